from rest_framework.pagination import PageNumberPagination


class StablePageNumberPagination(PageNumberPagination):
    """Page-number pagination with a total `count`; every API queryset ends its ordering on the
    primary key, so a record never shows on two pages."""

    page_size_query_param = "page_size"
    max_page_size = 500

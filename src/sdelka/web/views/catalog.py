"""Catalogue: the groups tree, products with prices and stock, the product card."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sdelka.catalog import selectors as catalog_selectors

from .. import selectors
from .common import acting_user, int_param, page_param, query_without


@login_required
def product_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    group = int_param(request.GET.get("group"))
    search = request.GET.get("q", "")
    context = {
        "tree": selectors.group_tree(user=user),
        "group": group,
        "search": search,
        "page": selectors.product_page(user=user, search=search, group=group, page=page_param(request)),
        "price_types": list(catalog_selectors.price_type_list(user=user).filter(is_active=True)),
        "query": query_without(request, "page"),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "web/catalog/_table.html", context)
    return render(request, "web/catalog/list.html", context)


@login_required
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(
        request, "web/catalog/detail.html", {"product": selectors.product_get(user=acting_user(request), pk=pk)}
    )

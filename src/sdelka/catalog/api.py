from rest_framework.routers import BaseRouter


def register(router: BaseRouter) -> None:
    """Register this app's API viewsets on the shared /api/v1/ router."""

"""Helpers shared by the workspace views."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from sdelka.accounts.models import User


def acting_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def int_param(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def page_param(request: HttpRequest) -> int:
    return max(int_param(request.GET.get("page")) or 1, 1)


def optional_url(name: str, pk: int) -> str | None:
    """The URL of a route another part of Sdelka may or may not provide yet (printing, e-mail)."""
    for kwargs in ({"pk": pk}, {"invoice_id": pk}):
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            continue
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return None


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string without `names` (for paging links that keep the filters)."""
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()

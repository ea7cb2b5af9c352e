"""The one visibility mechanism: which counterparties, and what hangs off them, a user may see.

Every selector, admin list, API view and export filters through `visible_to(user)`. Records that
hang off a counterparty (deals, invoices, payments, contacts, bank accounts, tasks, notes) are
visible exactly when their counterparty is; the queryset of each such model calls
`counterparty_q(user, "counterparty__")` with the path to its counterparty.

Rules:
- manager: counterparties he owns or co-owns;
- head: those owned or co-owned by anyone in the teams he heads and every team below them;
- director, accountant, admin: everything;
- a VIP counterparty only to the users named on it, and to directors and admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q

from .models import Team, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

NOTHING = Q(pk__in=[])


def team_subtree_ids(root_ids: set[int], children: dict[int | None, list[int]] | None = None) -> set[int]:
    """Ids of the given teams and all their descendants, in one query whatever the depth (none when the
    tree is given as `children`: parent id -> child ids)."""
    if children is None:
        children = {}
        for team_id, parent_id in Team.objects.values_list("id", "parent_id"):
            children.setdefault(parent_id, []).append(team_id)
    found: set[int] = set()
    stack = list(root_ids)
    while stack:
        team_id = stack.pop()
        if team_id in found:
            continue
        found.add(team_id)
        stack.extend(children.get(team_id, []))
    return found


@dataclass(frozen=True)
class Scope:
    """Whom a user answers for: the teams he heads and the users whose counterparties he sees by ownership."""

    headed_team_ids: frozenset[int]
    user_ids: tuple[int, ...]


SCOPE_ATTRIBUTE = "_sdelka_visibility_scope"


def user_scope(user: User) -> Scope:
    """The user's `Scope`, read once per user object and kept on it: a request's user lives for one request,
    so every query of a page filters by the same literal list of ids instead of re-reading the teams."""
    scope = getattr(user, SCOPE_ATTRIBUTE, None)
    if scope is None:
        scope = _read_scope(user)
        setattr(user, SCOPE_ATTRIBUTE, scope)
    return scope


def forget_scope(user: User) -> None:
    """Drop the kept `Scope` (after the user's teams changed while the object lives on)."""
    if hasattr(user, SCOPE_ATTRIBUTE):
        delattr(user, SCOPE_ATTRIBUTE)  # through request.user's lazy wrapper too


def _read_scope(user: User) -> Scope:
    """One query for a manager, two for a head (the team tree, then the users of his subtree)."""
    children: dict[int | None, list[int]] = {}
    headed: set[int] = set()
    for team_id, parent_id, head_id in Team.objects.order_by().values_list("id", "parent_id", "head_id"):
        children.setdefault(parent_id, []).append(team_id)
        if head_id == user.pk:
            headed.add(team_id)
    if not headed:
        return Scope(frozenset(), (user.pk,))
    teams = team_subtree_ids(headed, children)
    members = User.objects.filter(Q(team_id__in=teams) | Q(pk=user.pk)).order_by("pk").values_list("pk", flat=True)
    return Scope(frozenset(headed), tuple(members))


def scope_user_ids(user: User) -> list[int]:
    """The users whose counterparties this user sees through ownership (himself, his team subtree)."""
    return list(user_scope(user).user_ids)


def counterparty_q(user: User | AnonymousUser, path: str = "") -> Q:
    """A filter selecting the counterparties `user` may see; `path` leads from a model to them.

    On the counterparty itself the filter tests its own columns. From a model hanging off it (invoices,
    deals, ...) it tests only the foreign key against small id sets, so no query joins the counterparty
    table just to see its owner: owned ids come from the (owner, is_vip, id) index, and only the few VIPs
    hidden from the user are subtracted."""
    from sdelka.parties.models import Counterparty

    if not user.is_authenticated or not user.is_active:
        return NOTHING
    assert isinstance(user, User)
    co_owners = Counterparty.co_owners.through.objects
    vip_named = Counterparty.vip_users.through.objects.filter(user_id=user.pk).values("counterparty_id")
    if path:
        allowed = Q()
        if not user.sees_everything:
            users = scope_user_ids(user)
            owned = Counterparty.objects.order_by().filter(owner_id__in=users).values("pk")
            co_owned = co_owners.filter(user_id__in=users).values("counterparty_id")
            allowed = Q(**{f"{path}in": owned}) | Q(**{f"{path}in": co_owned})
        if user.sees_all_vip:
            return allowed
        hidden_vips = Counterparty.objects.order_by().filter(is_vip=True).exclude(pk__in=vip_named).values("pk")
        return allowed & ~Q(**{f"{path}in": hidden_vips})
    if user.sees_everything:
        allowed = Q()
    else:
        users = scope_user_ids(user)
        allowed = Q(owner_id__in=users) | Q(pk__in=co_owners.filter(user_id__in=users).values("counterparty_id"))
    if user.sees_all_vip:
        return allowed
    return allowed & (Q(is_vip=False) | Q(pk__in=vip_named))


class VisibleQuerySet(models.QuerySet):
    """A queryset whose model reaches its counterparty through `counterparty_path`."""

    counterparty_path = "counterparty__"

    def visible_to(self, user: Any) -> models.QuerySet:
        return self.filter(counterparty_q(user, self.counterparty_path))

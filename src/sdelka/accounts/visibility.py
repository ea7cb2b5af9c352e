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

from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q

from .models import Team, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

NOTHING = Q(pk__in=[])


def team_subtree_ids(root_ids: set[int]) -> set[int]:
    """Ids of the given teams and all their descendants, in one query whatever the depth."""
    children: dict[int | None, list[int]] = {}
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


def scope_user_ids(user: User) -> models.QuerySet[User] | list[int]:
    """The users whose counterparties this user sees through ownership."""
    headed = set(user.headed_teams.values_list("id", flat=True))
    if not headed:
        return [user.pk]
    teams = team_subtree_ids(headed)
    return User.objects.filter(Q(team_id__in=teams) | Q(pk=user.pk)).values_list("pk", flat=True)  # type: ignore[return-value]


def counterparty_q(user: User | AnonymousUser, path: str = "") -> Q:
    """A filter selecting the counterparties `user` may see; `path` leads from a model to them."""
    from sdelka.parties.models import Counterparty

    if not user.is_authenticated or not user.is_active:
        return NOTHING
    assert isinstance(user, User)

    def field(name: str) -> str:
        return f"{path}{name}"

    if user.sees_everything:
        allowed = Q()
    else:
        users = scope_user_ids(user)
        co_owned = Counterparty.co_owners.through.objects.filter(user_id__in=users).values("counterparty_id")
        allowed = Q(**{field("owner__in"): users}) | Q(**{field("pk__in"): co_owned})
    if user.sees_all_vip:
        return allowed
    vip_named = Counterparty.vip_users.through.objects.filter(user_id=user.pk).values("counterparty_id")
    return allowed & (Q(**{field("is_vip"): False}) | Q(**{field("pk__in"): vip_named}))


class VisibleQuerySet(models.QuerySet):
    """A queryset whose model reaches its counterparty through `counterparty_path`."""

    counterparty_path = "counterparty__"

    def visible_to(self, user: Any) -> models.QuerySet:
        return self.filter(counterparty_q(user, self.counterparty_path))

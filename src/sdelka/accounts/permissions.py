"""Model permissions by role, so a role is all it takes to work in the back office.

Django's admin asks `user.has_perm("app.action_model")`; `RoleBackend` answers from the user's role.
What a user may *see* inside a model is decided separately, by `visibility.visible_to`.
Records are deactivated or cancelled rather than deleted, so deleting is granted only for detail rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from .models import Role, User

REFERENCE = [
    "catalog.productgroup",
    "catalog.unit",
    "catalog.product",
    "catalog.property",
    "catalog.propertyoption",
    "catalog.productpropertyvalue",
    "catalog.variant",
    "catalog.pricetype",
    "catalog.price",
    "catalog.warehouse",
    "catalog.stocklevel",
    "core.currency",
    "core.exchangerate",
    "sales.organisation",
    "sales.organisationbankaccount",
    "sales.pipeline",
    "sales.stage",
    "parties.counterpartygroup",
    "parties.tag",
]
SALES_WORK = [
    "parties.counterparty",
    "parties.counterpartybankaccount",
    "parties.contactperson",
    "sales.deal",
    "sales.invoice",
    "sales.invoiceline",
    "activities.task",
    "activities.note",
    "activities.notification",
]
MONEY = ["sales.payment", "sales.paymentallocation"]
DELETABLE_DETAILS = [
    "parties.counterpartybankaccount",
    "parties.contactperson",
    "sales.invoiceline",
    "activities.task",
    "activities.note",
    "activities.notification",
    "sales.paymentallocation",
]
# What an integrator sets up: connections to 1C bases, their mapping rules and tasks; runs are read only.
EXCHANGE_SETUP = ["exchange.connection", "exchange.mappingrule", "exchange.synctask", "exchange.taskrule"]
EXCHANGE_JOURNAL = ["exchange.exchangerun", "exchange.exchangeevent", "exchange.exchangefile", "exchange.externalref"]
ACCOUNTING_REFERENCE = ["core.exchangerate", "sales.organisation", "sales.organisationbankaccount"]


def _perms(actions: list[str], models: list[str]) -> set[str]:
    return {f"{label.split('.')[0]}.{action}_{label.split('.')[1]}" for label in models for action in actions}


def _role_permissions() -> dict[str, set[str]]:
    everyone = _perms(["view"], REFERENCE + SALES_WORK + MONEY)
    sales = everyone | _perms(["add", "change"], SALES_WORK) | _perms(["delete"], DELETABLE_DETAILS)
    accountant = sales | _perms(["add", "change"], MONEY + ACCOUNTING_REFERENCE)
    return {
        Role.MANAGER: sales,
        Role.HEAD: sales,
        Role.ACCOUNTANT: accountant,
        Role.DIRECTOR: accountant | _perms(["add", "change"], REFERENCE),
        Role.INTEGRATOR: _perms(["view"], REFERENCE + EXCHANGE_SETUP + EXCHANGE_JOURNAL)
        | _perms(["add", "change"], EXCHANGE_SETUP),
    }


ROLE_PERMISSIONS = _role_permissions()


class RoleBackend(BaseBackend):
    """Grants the permissions of the user's role; the admin role has every permission."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not isinstance(user_obj, User) or not user_obj.is_active:
            return set()
        return ROLE_PERMISSIONS.get(user_obj.role, set())

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if isinstance(user_obj, User) and user_obj.is_active and user_obj.role == Role.ADMIN:
            return True
        return perm in self.get_all_permissions(user_obj, obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        if isinstance(user_obj, User) and user_obj.is_active and user_obj.role == Role.ADMIN:
            return True
        return any(perm.startswith(f"{app_label}.") for perm in self.get_all_permissions(user_obj))

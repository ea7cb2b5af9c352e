"""REST API of counterparties, their contact persons and bank accounts.

Routes (on the shared /api/v1/ router):
- `counterparties/`: list, retrieve, create, update, partial update. Bank accounts and contacts are
  nested (`bank_accounts`, `contacts`), read with the counterparty and writable on create and update:
  an item with an `id` updates that row of this counterparty, one without adds a row, rows not listed
  stay. `?search=` matches name, full name, ИНН, phones (by digits) and e-mails, the counterparty's
  or a contact's; filters `kind`, `is_active`, `is_vip`, `owner`, `inn`; `?ordering=` by name, ИНН,
  created or updated, always ending on the id, so pages are stable.
- `contacts/` and `counterparty-bank-accounts/`: flat routes for one row at a time (list, retrieve,
  create, update, partial update, delete), filtered by `counterparty`.

Reads go through `parties.selectors` (so through `visible_to(user)`): a row outside the user's scope
answers 404, and a reference to such a counterparty is refused like one that does not exist. Writes go
through `parties.services`; their ValidationError becomes a 400 whose JSON names the field, nested
rows as `bank_accounts.<index>.<field>` / `contacts.<index>.<field>`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.routers import BaseRouter
from rest_framework.views import APIView

from sdelka.accounts.models import User
from sdelka.api.errors import call_service
from sdelka.api.mixins import VisiblePrimaryKeyRelatedField
from sdelka.core.models import Currency

from . import selectors, services
from .models import ContactPerson, Counterparty, CounterpartyBankAccount, CounterpartyGroup, Tag

T = TypeVar("T")
REQUISITE_MAX_TYPED = 40  # requisites may be typed with spaces and dashes; services strip them


def typed_number(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=REQUISITE_MAX_TYPED, required=False, allow_blank=True, **kwargs)


def active_users() -> QuerySet[User]:
    return User.objects.filter(is_active=True)


class StableOrderingFilter(OrderingFilter):
    """`?ordering=` that always ends on the primary key, so no row shows on two pages."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: APIView) -> list[str]:
        ordering = list(super().get_ordering(request, queryset, view) or [])
        return [*ordering, "pk"] if ordering and "pk" not in ordering else ordering


class BankAccountFields(serializers.ModelSerializer):
    bik = typed_number()
    number = typed_number()
    correspondent_account = typed_number()
    currency = serializers.PrimaryKeyRelatedField(queryset=Currency.objects.filter(is_active=True), required=False)

    class Meta:
        model = CounterpartyBankAccount
        fields = ["id", "bik", "bank_name", "correspondent_account", "number", "currency", "is_main"]
        validators: list[Any] = []


class NestedBankAccountSerializer(BankAccountFields):
    id = serializers.IntegerField(required=False, help_text="Give it to update that account; omit to add one.")


class ContactFields(serializers.ModelSerializer):
    class Meta:
        model = ContactPerson
        fields = [
            "id", "last_name", "first_name", "middle_name", "position", "phones", "emails", "birthday", "notes",
            "is_active",
        ]  # fmt: skip
        validators: list[Any] = []


class NestedContactSerializer(ContactFields):
    id = serializers.IntegerField(required=False, help_text="Give it to update that contact; omit to add one.")


class CounterpartySerializer(serializers.ModelSerializer):
    inn = typed_number()
    kpp = typed_number()
    ogrn = typed_number()
    okpo = typed_number()
    owner = serializers.PrimaryKeyRelatedField(
        queryset=active_users(), required=False, help_text="Defaults to the user making the request."
    )
    co_owners = serializers.PrimaryKeyRelatedField(queryset=active_users(), many=True, required=False)
    vip_users = serializers.PrimaryKeyRelatedField(queryset=active_users(), many=True, required=False)
    tags = serializers.PrimaryKeyRelatedField(queryset=Tag.objects.all(), many=True, required=False)
    group = serializers.PrimaryKeyRelatedField(
        queryset=CounterpartyGroup.objects.all(), required=False, allow_null=True
    )
    bank_accounts = NestedBankAccountSerializer(many=True, required=False)
    contacts = NestedContactSerializer(many=True, required=False)

    class Meta:
        model = Counterparty
        fields = [
            "id", "kind", "name", "full_name", "inn", "kpp", "ogrn", "okpo", "legal_address", "postal_address",
            "phones", "emails", "site", "group", "owner", "co_owners", "tags", "is_vip", "vip_users", "is_active",
            "comment", "created_at", "updated_at", "bank_accounts", "contacts",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]
        # ИНН+КПП uniqueness is the service's: its message links to the existing counterparty.
        validators: list[Any] = []

    def _split(self, validated_data: dict[str, Any]) -> dict[str, Any]:
        return {
            "data": validated_data,
            "bank_accounts": validated_data.pop("bank_accounts", None),
            "contacts": validated_data.pop("contacts", None),
            "user": self.context["request"].user,
        }

    def create(self, validated_data: dict[str, Any]) -> Counterparty:
        return call_service(services.create_counterparty, **self._split(validated_data))

    def update(self, instance: Counterparty, validated_data: dict[str, Any]) -> Counterparty:
        return call_service(services.update_counterparty, counterparty=instance, **self._split(validated_data))


class RowServices(serializers.ModelSerializer):
    """A row of a counterparty written through `add_service(counterparty=…)` / `update_service(<row>=…)`."""

    add_service: ClassVar[Callable[..., Any]]
    update_service: ClassVar[Callable[..., Any]]
    row_argument: ClassVar[str]

    def create(self, validated_data: dict[str, Any]) -> Any:
        counterparty = validated_data.pop("counterparty")
        user = self.context["request"].user
        return call_service(type(self).add_service, user=user, counterparty=counterparty, data=validated_data)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        user = self.context["request"].user
        row = {self.row_argument: instance}
        return call_service(type(self).update_service, user=user, data=validated_data, **row)


class ContactSerializer(RowServices, ContactFields):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all())
    add_service = services.add_contact
    update_service = services.update_contact
    row_argument = "contact"

    class Meta(ContactFields.Meta):
        fields = ["counterparty", *ContactFields.Meta.fields, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]


class BankAccountSerializer(RowServices, BankAccountFields):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all())
    add_service = services.add_bank_account
    update_service = services.update_bank_account
    row_argument = "bank_account"

    class Meta(BankAccountFields.Meta):
        fields = ["counterparty", *BankAccountFields.Meta.fields]


SEARCH = OpenApiParameter(
    "search", OpenApiTypes.STR, description="Name, full name, ИНН, phone (by digits) or e-mail, a contact's too."
)
COUNTERPARTY_FILTER = OpenApiParameter("counterparty", OpenApiTypes.INT, description="Rows of this counterparty.")


class WriteMixins(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create, update and partial update; no deletion of counterparties by API."""

    filter_backends = [StableOrderingFilter]

    def query(self, name: str) -> str:
        return str(self.request.query_params.get(name, "") or "")


@extend_schema_view(list=extend_schema(parameters=[SEARCH]))
class CounterpartyViewSet(WriteMixins):
    """Counterparties the user sees, with their bank accounts and contact persons."""

    serializer_class = CounterpartySerializer
    queryset = Counterparty.objects.none()
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    filterset_fields = ["kind", "is_active", "is_vip", "owner", "inn"]
    ordering_fields = ["name", "inn", "created_at", "updated_at"]

    def get_queryset(self) -> QuerySet[Counterparty]:
        return selectors.counterparty_list(user=self.request.user, search=self.query("search"))  # type: ignore[arg-type]


class CounterpartyRowViewSet(mixins.DestroyModelMixin, WriteMixins):
    ordering_fields = ["id"]

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        counterparty = self.query("counterparty")
        if counterparty.isdigit():
            queryset = queryset.filter(counterparty_id=int(counterparty))
        return super().filter_queryset(queryset)


@extend_schema_view(list=extend_schema(parameters=[SEARCH, COUNTERPARTY_FILTER]))
class ContactViewSet(CounterpartyRowViewSet):
    """Contact persons of the counterparties the user sees."""

    serializer_class = ContactSerializer
    queryset = ContactPerson.objects.none()
    ordering_fields = ["last_name", "first_name", "created_at"]

    def get_queryset(self) -> QuerySet[ContactPerson]:
        return selectors.contact_list(user=self.request.user, search=self.query("search"))  # type: ignore[arg-type]

    def perform_destroy(self, instance: ContactPerson) -> None:
        services.delete_contact(user=self.request.user, contact=instance)  # type: ignore[arg-type]


@extend_schema_view(list=extend_schema(parameters=[COUNTERPARTY_FILTER]))
class BankAccountViewSet(CounterpartyRowViewSet):
    """Bank accounts of the counterparties the user sees."""

    serializer_class = BankAccountSerializer
    queryset = CounterpartyBankAccount.objects.none()

    def get_queryset(self) -> QuerySet[CounterpartyBankAccount]:
        return selectors.bank_account_list(user=self.request.user)  # type: ignore[arg-type]

    def perform_destroy(self, instance: CounterpartyBankAccount) -> None:
        services.delete_bank_account(user=self.request.user, bank_account=instance)  # type: ignore[arg-type]


def register(router: BaseRouter) -> None:
    """Register this app's API viewsets on the shared /api/v1/ router."""
    router.register("counterparties", CounterpartyViewSet, basename="counterparty")
    router.register("contacts", ContactViewSet, basename="contact")
    router.register("counterparty-bank-accounts", BankAccountViewSet, basename="counterparty-bank-account")

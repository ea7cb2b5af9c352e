"""Reads of the manager's workspace. Every query goes through `visible_to(user)` or the selectors of the
domain apps, and a page's related rows are fetched up front (no query per row).

Lists page without COUNT(*): a page reads `per_page + 1` rows and shows "next" when the extra row came.
The counterparty list (200,000 rows and more) pages by keyset (`keyset_page`): the next page starts after
the sort key of the last row shown, so a page deep in the list costs what the first does.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from sdelka.accounts.models import User
from sdelka.accounts.visibility import scope_user_ids, user_scope
from sdelka.activities import selectors as activity_selectors
from sdelka.activities.models import Note, Notification, Task
from sdelka.catalog import selectors as catalog_selectors
from sdelka.catalog.models import Product, ProductGroup
from sdelka.parties import selectors as party_selectors
from sdelka.parties.models import Counterparty, Tag
from sdelka.sales import receivables
from sdelka.sales import selectors as sales_selectors
from sdelka.sales.models import (
    OPEN_INVOICE_STATUSES,
    Deal,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentDirection,
    Pipeline,
    Stage,
    StageKind,
)
from sdelka.sales.receivables import MONEY_FIELD

T = TypeVar("T")
PER_PAGE = 50
SEARCH_LIMIT = 8


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_of(queryset: QuerySet[Any], number: int, per_page: int = PER_PAGE) -> Page[Any]:
    """One page of an ordered queryset, read as `per_page + 1` rows: no COUNT(*)."""
    number = max(number, 1)
    start = (number - 1) * per_page
    rows = list(queryset[start : start + per_page + 1])
    return Page(items=rows[:per_page], number=number, has_next=len(rows) > per_page)


@dataclass(frozen=True)
class CursorPage(Generic[T]):
    """A page read by keyset: rows after (or before) the sort key of a row of the page next to it, so the
    ten-thousandth page costs what the first does. Cursors are opaque strings for the pager's links."""

    items: list[T]
    next_cursor: str
    previous_cursor: str

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_cursor)


def encode_cursor(value: Any, pk: int) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime.datetime) else value, pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, field: str) -> tuple[Any, int] | None:
    """The (sort value, pk) a cursor names; None for anything that is not a cursor we made."""
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if field.endswith("_at"):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, (str, datetime.datetime)) or not isinstance(pk, int):
            return None
        return value, pk
    except (ValueError, TypeError, UnicodeDecodeError):
        return None


def keyset_page(
    queryset: QuerySet[Any], *, order: tuple[str, str], after: str = "", before: str = "", per_page: int = PER_PAGE
) -> CursorPage[Any]:
    """One page of `queryset` ordered by `order` = (field, pk) both ascending or both descending ("-")."""
    field = order[0].lstrip("-")
    descending = order[0].startswith("-")
    cursor = _decode_cursor(after or before, field) if (after or before) else None
    backwards = cursor is not None and not after
    if cursor is not None:
        value, pk = cursor
        op = "gt" if descending == backwards else "lt"
        # `field >= value` (or <=) keeps the scan on the field's index; the OR only settles ties.
        queryset = queryset.filter(**{f"{field}__{op}e": value}).filter(
            Q(**{f"{field}__{op}": value}) | Q(**{f"pk__{op}": pk})
        )
    flipped = tuple(name[1:] if name.startswith("-") else f"-{name}" for name in order)
    rows = list(queryset.order_by(*(flipped if backwards else order))[: per_page + 1])
    more, rows = len(rows) > per_page, rows[:per_page]
    if backwards:
        rows.reverse()
    has_next = cursor is not None if backwards else more
    has_previous = more if backwards else cursor is not None
    return CursorPage(
        items=rows,
        next_cursor=encode_cursor(getattr(rows[-1], field), rows[-1].pk) if rows and has_next else "",
        previous_cursor=encode_cursor(getattr(rows[0], field), rows[0].pk) if rows and has_previous else "",
    )


# --- Dashboard ------------------------------------------------------------------------------------

SCOPE_MINE = "mine"
SCOPE_TEAM = "team"


@dataclass(frozen=True)
class DashboardScope:
    """Whose figures the dashboard shows. A manager sees his own (and co-owned); a head or the director
    chooses between his own deals and invoices and everything he answers for."""

    name: str
    has_team: bool

    @property
    def owner_only(self) -> bool:
        return self.has_team and self.name == SCOPE_MINE


def dashboard_scope(*, user: User, requested: str) -> DashboardScope:
    has_team = user.sees_everything or bool(user_scope(user).headed_team_ids)
    if not has_team:
        return DashboardScope(SCOPE_MINE, has_team=False)
    return DashboardScope(requested if requested in (SCOPE_MINE, SCOPE_TEAM) else SCOPE_TEAM, has_team=True)


def _owned(queryset: QuerySet[Any], user: User, scope: DashboardScope, path: str = "owner") -> QuerySet[Any]:
    return queryset.filter(**{path: user}) if scope.owner_only else queryset


@dataclass(frozen=True)
class DashboardSummary:
    counterparties: int
    open_deals: int
    unpaid_total: Decimal  # in roubles at the latest rates
    tasks_due: int
    unpaid_unrated: list[str] = field(default_factory=list)  # currencies left out of it: no rate yet


def dashboard_summary(
    *, user: User, scope: DashboardScope, open_deals: int, aging: list[CurrencyAging]
) -> DashboardSummary:
    """The figures of the dashboard's cards. Open deals come from `deal_figures` (counted with the funnel), the
    unpaid total from `receivables_aging` (what the open invoices still owe, every currency's row in roubles at
    its latest rate)."""
    tasks = activity_selectors.task_list(user=user, mine=not scope.has_team or scope.owner_only, team=True)
    owed = [(row.currency, row.open) for row in aging]
    unpaid, unrated = _in_rates(owed, sales_selectors.latest_rates({code for code, _open in owed}))
    return DashboardSummary(
        counterparties=_owned(Counterparty.objects.visible_to(user), user, scope).filter(is_active=True).count(),
        open_deals=open_deals,
        unpaid_total=unpaid,
        tasks_due=tasks.filter(is_done=False, due_at__lte=timezone.now()).count(),
        unpaid_unrated=sorted(unrated),
    )


def dashboard_tasks(*, user: User, scope: DashboardScope, limit: int = 10) -> list[Task]:
    """Open tasks, overdue and due first: the user's, or his team's when the team is shown."""
    team = scope.has_team and not scope.owner_only
    tasks = activity_selectors.task_list(user=user, mine=not team, team=team).filter(is_done=False)
    return list(tasks.order_by(F("due_at").asc(nulls_last=True), "pk")[:limit])


@dataclass(frozen=True)
class FunnelStage:
    name: str
    kind: str
    count: int
    total: Decimal


@dataclass(frozen=True)
class DealFigures:
    funnel: list[FunnelStage]
    open_deals: int
    unrated: list[str] = field(default_factory=list)  # currencies of funnel deals left out of the sums: no rate


def _in_rates(amounts: Sequence[tuple[str, Decimal]], rates: dict[str, Decimal]) -> tuple[Decimal, set[str]]:
    """(the sum in roubles at `rates`, the currencies without a rate, whose amounts are left out)."""
    total, unrated = Decimal(0), set()
    for code, amount in amounts:
        if code in rates:
            total += amount * rates[code]
        else:
            unrated.add(code)
    return total.quantize(Decimal("0.01")), unrated


def deal_figures(*, user: User, scope: DashboardScope) -> DealFigures:
    """The open deals of every pipeline (the summary's count) and those of the default pipeline by stage, with
    counts and sums in roubles at the latest rates (the funnel): one grouped query with filtered aggregates, one
    for the stages and one for the rates."""
    stages = list(
        Stage.objects.filter(pipeline__is_default=True, kind=StageKind.OPEN).order_by(
            "pipeline__name", "pipeline", "order"
        )
    )
    pipeline_id = stages[0].pipeline_id if stages else None
    stages = [stage for stage in stages if stage.pipeline_id == pipeline_id]
    is_open = Q(stage__kind=StageKind.OPEN)
    in_funnel = Q(pipeline_id=pipeline_id, closed_at__isnull=True) if pipeline_id else Q(pk__in=[])
    deals = _owned(Deal.objects.visible_to(user), user, scope).filter(is_open | in_funnel)
    rows = list(
        deals.order_by()
        .values("stage_id", "currency_id")
        .annotate(
            open=Count("pk", filter=is_open),
            count=Count("pk", filter=in_funnel),
            total=Coalesce(Sum("amount", filter=in_funnel), Decimal(0), output_field=MONEY_FIELD),
        )
    )
    amounts: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for row in rows:
        counts[row["stage_id"]] += row["count"]
        if row["count"]:
            amounts[row["stage_id"]].append((row["currency_id"], row["total"]))
    rates = sales_selectors.latest_rates({row["currency_id"] for row in rows})
    funnel, unrated = [], set()
    for stage in stages:
        total, missing = _in_rates(amounts[stage.pk], rates)
        unrated |= missing
        funnel.append(FunnelStage(stage.name, stage.kind, counts[stage.pk], total))
    return DealFigures(funnel=funnel, open_deals=sum(row["open"] for row in rows), unrated=sorted(unrated))


@dataclass(frozen=True)
class WeekSales:
    monday: datetime.date
    week: int
    current: Decimal
    previous_monday: datetime.date | None
    previous: Decimal | None


SALES_WEEKS = 12
SOLD_EXCLUDED = (InvoiceStatus.DRAFT, InvoiceStatus.CANCELLED)


def _same_iso_week_a_year_ago(monday: datetime.date) -> datetime.date | None:
    year, week, _ = monday.isocalendar()
    try:
        return datetime.date.fromisocalendar(year - 1, week, 1)
    except ValueError:  # week 53 of a year whose predecessor has only 52
        return None


def weekly_sales(
    *, user: User, scope: DashboardScope, today: datetime.date | None = None, weeks: int = SALES_WEEKS
) -> list[WeekSales]:
    """Invoiced sums (issued, in roubles at each invoice's rate) for the last `weeks` ISO weeks and for the
    same ISO weeks a year before: one grouped query over both date ranges."""
    today = today or timezone.localdate()
    this_monday = today - datetime.timedelta(days=today.weekday())
    mondays = [this_monday - datetime.timedelta(weeks=back) for back in reversed(range(weeks))]
    twins = {monday: _same_iso_week_a_year_ago(monday) for monday in mondays}
    known_twins = [twin for twin in twins.values() if twin]
    week = datetime.timedelta(days=7)
    period = Q(date__gte=mondays[0], date__lt=this_monday + week)
    if known_twins:
        period |= Q(date__gte=min(known_twins), date__lt=max(known_twins) + week)
    sold = _owned(Invoice.objects.visible_to(user), user, scope).exclude(status__in=SOLD_EXCLUDED).filter(period)
    totals = {
        _as_date(row["week"]): row["total"]
        for row in sold.annotate(week=TruncWeek("date"))
        .values("week")
        .annotate(total=Sum(F("total") * F("exchange_rate"), output_field=MONEY_FIELD))
        .order_by()
    }
    return [
        WeekSales(
            monday=monday,
            week=monday.isocalendar()[1],
            current=_money(totals.get(monday)),
            previous_monday=twin,
            previous=None if twin is None else _money(totals.get(twin)),
        )
        for monday, twin in twins.items()
    ]


def _as_date(value: datetime.date | datetime.datetime) -> datetime.date:
    return value.date() if isinstance(value, datetime.datetime) else value


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class AgingBucket:
    key: str
    amount: Decimal


@dataclass(frozen=True)
class CurrencyAging:
    currency: str
    open: Decimal
    overdue: Decimal
    buckets: list[AgingBucket]


def receivables_aging(*, user: User, scope: DashboardScope) -> list[CurrencyAging]:
    """What clients owe by age bucket, one row per currency (sales.receivables: one grouped query)."""
    rows = receivables.totals(user=user, owner=user if scope.owner_only else None)
    return [
        CurrencyAging(
            currency=row["currency_id"],
            open=row["open"],
            overdue=row["overdue"],
            buckets=[AgingBucket(key, row[key]) for key in receivables.BUCKETS],
        )
        for row in rows
    ]


def awaiting_payment(*, user: User, scope: DashboardScope, limit: int = 10) -> list[Invoice]:
    """Issued invoices not yet paid, the most overdue first."""
    invoices = _owned(Invoice.objects.visible_to(user), user, scope).filter(status__in=OPEN_INVOICE_STATUSES)
    invoices = invoices.select_related("counterparty", "currency")
    return list(invoices.order_by(F("due_date").asc(nulls_last=True), "pk")[:limit])


def payments_today(*, user: User, scope: DashboardScope, limit: int = 10) -> list[Payment]:
    payments = _owned(Payment.objects.visible_to(user), user, scope, path="counterparty__owner")
    payments = payments.filter(date=timezone.localdate(), direction=PaymentDirection.INCOMING, cancelled=False)
    return list(payments.select_related("counterparty", "currency").order_by("-pk")[:limit])


# --- Global search --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResults:
    query: str
    counterparties: list[Counterparty]
    invoices: list[Invoice]
    products: list[Product]

    @property
    def empty(self) -> bool:
        return not (self.counterparties or self.invoices or self.products)


def global_search(*, user: User, query: str, limit: int = SEARCH_LIMIT) -> SearchResults:
    """Counterparties by name, ИНН, phone or e-mail; invoices by number; products by article, barcode or name."""
    query = query.strip()
    if len(query) < 2:
        return SearchResults(query=query, counterparties=[], invoices=[], products=[])
    counterparties = party_selectors.search_counterparties(
        Counterparty.objects.visible_to(user).select_related("owner"), query
    ).order_by("name", "pk")
    invoices = (
        Invoice.objects.visible_to(user)
        .filter(number__icontains=query)
        .select_related("counterparty", "currency")
        .order_by("-date", "-pk")
    )
    products = catalog_selectors.product_list(user=user, search=query, active=True)
    return SearchResults(
        query=query,
        counterparties=list(counterparties[:limit]),
        invoices=list(invoices[:limit]),
        products=list(products.prefetch_related(None).select_related("unit")[:limit]),
    )


# --- Counterparties -------------------------------------------------------------------------------

COUNTERPARTY_SORTS: dict[str, tuple[str, str]] = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "inn": ("inn", "pk"),
    "-inn": ("-inn", "-pk"),
    "created": ("created_at", "pk"),
    "-created": ("-created_at", "-pk"),
}


@dataclass(frozen=True)
class CounterpartyFilters:
    search: str = ""
    owner: int | None = None
    tag: int | None = None
    active: bool | None = True
    has_debt: bool = False
    sort: str = "name"


def counterparty_page(
    *, user: User, filters: CounterpartyFilters, after: str = "", before: str = ""
) -> CursorPage[Counterparty]:
    """A page of the counterparties list: owner and tags in two queries, debt as one subquery column."""
    queryset = Counterparty.objects.visible_to(user)
    if filters.owner is not None:
        queryset = queryset.filter(owner_id=filters.owner)
    if filters.tag is not None:
        queryset = queryset.filter(tags__id=filters.tag)
    if filters.active is not None:
        queryset = queryset.filter(is_active=filters.active)
    open_invoices = Invoice.objects.filter(status__in=OPEN_INVOICE_STATUSES)
    queryset = queryset.annotate(has_debt=Exists(open_invoices.filter(counterparty=OuterRef("pk"))))
    if filters.has_debt:
        # A semi-join on the open invoices (a few per cent of the counterparties), not a probe per row while
        # walking the whole name index.
        queryset = queryset.filter(pk__in=open_invoices.values("counterparty_id"))
    queryset = party_selectors.search_counterparties(queryset, filters.search)
    queryset = queryset.select_related("owner").prefetch_related("tags")
    order = COUNTERPARTY_SORTS.get(filters.sort, COUNTERPARTY_SORTS["name"])
    return keyset_page(queryset, order=order, after=after, before=before)


def owner_choices(*, user: User) -> QuerySet[User]:
    """Users whose counterparties this user sees by ownership: the owners a list can be filtered by."""
    users = User.objects.filter(is_active=True)
    if not user.sees_everything:
        users = users.filter(pk__in=scope_user_ids(user))
    return users.order_by("last_name", "first_name", "username")


def tag_choices() -> QuerySet[Tag]:
    return Tag.objects.order_by("name")


@dataclass
class CounterpartyCard:
    counterparty: Counterparty
    bank_accounts: list[Any]
    contacts: list[Any]
    contracts: list[Any]
    deals: list[Deal]
    invoices: list[Invoice]
    payments: list[Payment]
    tasks: list[Task]
    debt: Decimal
    onec: OneCState
    timeline: list[activity_selectors.TimelineItem] = field(default_factory=list)


CARD_LIMIT = 20


def counterparty_card(*, user: User, pk: Any) -> CounterpartyCard:
    """Everything the card shows; Http404 outside the user's scope. Once the counterparty passes `visible_to`,
    what hangs off it is read by the counterparty alone (a head's scope may hold 100,000 counterparties)."""
    counterparty = party_selectors.counterparty_get(user=user, pk=pk)
    invoices = sales_selectors.invoices_of(counterparty).prefetch_related(None)
    debt = invoices.filter(status__in=OPEN_INVOICE_STATUSES).aggregate(debt=Sum(F("total") - F("paid_amount")))
    tasks = activity_selectors.tasks_with_related(Task.objects.filter(counterparty=counterparty, is_done=False))
    return CounterpartyCard(
        counterparty=counterparty,
        bank_accounts=list(counterparty.bank_accounts.all()),
        contacts=list(counterparty.contacts.all()),
        contracts=list(sales_selectors.contract_list(user=user, counterparty=counterparty)),
        deals=list(sales_selectors.deals_of(counterparty)[:CARD_LIMIT]),
        invoices=list(invoices[:CARD_LIMIT]),
        payments=list(sales_selectors.payments_of(counterparty).prefetch_related(None)[:CARD_LIMIT]),
        tasks=list(tasks[:CARD_LIMIT]),
        debt=debt["debt"] or Decimal("0.00"),
        onec=onec_state(counterparty),
        timeline=activity_selectors.timeline(user=user, counterparty_id=counterparty.pk, limit=50),
    )


def counterparty_options(*, user: User, query: str, limit: int = 20) -> list[Counterparty]:
    """Visible active counterparties for a picker; the latest ones when nothing is typed."""
    queryset = Counterparty.objects.visible_to(user).filter(is_active=True)
    if query.strip():
        return list(party_selectors.search_counterparties(queryset, query).order_by("name", "pk")[:limit])
    return list(queryset.order_by("-created_at", "-pk")[:limit])


# --- 1C link state --------------------------------------------------------------------------------

ONEC_PROBLEM_LIMIT = 10
ONEC_PROBLEM_DAYS = 90


@dataclass
class OneCState:
    """What the 1C bases know of one object: its ids there (with code and last sync) and recent problems."""

    refs: list[Any]
    problems: list[Any]
    orders: list[Any] = field(default_factory=list)
    debts: list[Any] = field(default_factory=list)  # a counterparty's debt according to each 1C base
    open_amount: Decimal | None = None  # what its open invoices in Sdelka still owe, to compare with

    @property
    def linked(self) -> bool:
        return bool(self.refs or self.orders)


def onec_state(obj: Counterparty | Invoice) -> OneCState:
    """The exchange's external ids of `obj` (a counterparty or an invoice), the warnings and errors the
    journal recorded for those ids lately, for an invoice the order state 1C reported, for a counterparty
    its debt according to 1C next to what its open invoices owe in Sdelka: up to four queries."""
    from django.contrib.contenttypes.models import ContentType

    from sdelka.exchange.models import CounterpartyDebt, EventLevel, ExchangeEvent, ExternalRef, OrderState

    refs = list(
        ExternalRef.objects.filter(content_type=ContentType.objects.get_for_model(obj), object_id=obj.pk)
        .select_related("connection", "seen_run")
        .order_by("connection__name", "kind", "pk")
    )
    orders: list[Any] = []
    if isinstance(obj, Invoice):
        orders = list(OrderState.objects.filter(invoice=obj).select_related("connection").order_by("connection__name"))
    problems: list[Any] = []
    if refs:
        # The journal names a record by its 1C id; each id counts only in its own base.
        same_record = Q(pk__in=[])
        for ref in refs:
            same_record |= Q(connection_id=ref.connection_id, external_id=ref.external_id)
        since = timezone.now() - timedelta(days=ONEC_PROBLEM_DAYS)
        events = ExchangeEvent.objects.filter(
            same_record, level__in=(EventLevel.WARNING, EventLevel.ERROR), created_at__gte=since
        )
        problems = list(events.select_related("connection").order_by("-pk")[:ONEC_PROBLEM_LIMIT])
    state = OneCState(refs=refs, problems=problems, orders=orders)
    if isinstance(obj, Counterparty):
        state.debts = list(
            CounterpartyDebt.objects.filter(counterparty=obj).select_related("connection").order_by("connection__name")
        )
        if state.debts:
            state.open_amount = Invoice.objects.filter(counterparty=obj, status__in=OPEN_INVOICE_STATUSES).aggregate(
                owed=Sum(F("total") - F("paid_amount"), output_field=MONEY_FIELD)
            )["owed"] or Decimal("0.00")
    return state


# --- Deals ----------------------------------------------------------------------------------------


def pipelines() -> QuerySet[Pipeline]:
    return Pipeline.objects.prefetch_related("stages").order_by("-is_default", "name")


def pipeline_for(pk: Any) -> Pipeline:
    pipeline = Pipeline.objects.filter(pk=pk).first() if pk else None
    return pipeline or Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.get()


@dataclass(frozen=True)
class BoardColumn:
    stage: Any
    deals: list[Deal]
    total: Decimal  # in roubles at the latest rates
    unrated: list[str] = field(default_factory=list)  # currencies left out of the total: no rate


def deal_board(*, user: User, pipeline: Pipeline, owner: int | None = None, team: bool = True) -> list[BoardColumn]:
    """Stages of a pipeline in order with the visible deals in each and their sum (two queries).

    Closed stages show only deals closed in the last 30 days, so the board stays short."""
    since = timezone.now() - timedelta(days=30)
    deals = sales_selectors.deal_list(user=user, pipeline=pipeline, owner=owner)
    deals = deals.filter(Q(closed_at__isnull=True) | Q(closed_at__gte=since))
    if not team:
        deals = deals.filter(owner=user)
    stages = list(pipeline.stages.order_by("order"))
    by_stage: dict[int, list[Deal]] = {stage.pk: [] for stage in stages}
    for deal in deals:
        by_stage.setdefault(deal.stage_id, []).append(deal)
    rates = sales_selectors.latest_rates({str(deal.currency_id) for column in by_stage.values() for deal in column})
    columns = []
    for stage in stages:
        total, unrated = _in_rates([(str(deal.currency_id), deal.amount) for deal in by_stage[stage.pk]], rates)
        columns.append(BoardColumn(stage=stage, deals=by_stage[stage.pk], total=total, unrated=sorted(unrated)))
    return columns


def deal_page(*, user: User, page: int = 1, open_only: bool = False, owner: int | None = None) -> Page[Deal]:
    return page_of(sales_selectors.deal_list(user=user, open_only=open_only, owner=owner), page)


@dataclass
class DealCard:
    deal: Deal
    invoices: list[Invoice]
    tasks: list[Task]
    notes: list[Note]
    history: list[Any]


def deal_card(*, user: User, pk: Any) -> DealCard:
    deal = _get_or_404(sales_selectors.deal_list(user=user), pk)
    return DealCard(
        deal=deal,
        invoices=list(Invoice.objects.visible_to(user).filter(deal=deal).select_related("currency")),
        tasks=list(activity_selectors.task_list(user=user).filter(deal=deal)),
        notes=list(activity_selectors.note_list(user=user).filter(deal=deal)),
        history=list(deal.history.select_related("history_user").order_by("-history_date")[:20]),
    )


def _get_or_404(queryset: QuerySet[Any], pk: Any) -> Any:
    """One row of `queryset` (already narrowed to what the user sees); Http404 otherwise."""
    try:
        return get_object_or_404(queryset, pk=int(pk))
    except (TypeError, ValueError) as error:
        raise Http404 from error


def deal_get(*, user: User, pk: Any) -> Deal:
    return _get_or_404(sales_selectors.deal_list(user=user), pk)


# --- Invoices -------------------------------------------------------------------------------------


def invoice_page(*, user: User, status: str = "", search: str = "", page: int = 1) -> Page[Invoice]:
    queryset = sales_selectors.invoice_list(user=user, status=status or None).prefetch_related(None)
    if search.strip():
        queryset = queryset.filter(
            Q(number__icontains=search.strip())
            | Q(
                counterparty__in=party_selectors.search_counterparties(
                    Counterparty.objects.visible_to(user), search
                ).values("pk")
            )
        )
    return page_of(queryset.select_related("counterparty", "owner", "currency", "organisation"), page)


def invoice_get(*, user: User, pk: Any) -> Invoice:
    return _get_or_404(sales_selectors.invoice_list(user=user), pk)


def products_for_lines(*, user: User, ids: Sequence[int]) -> dict[int, Product]:
    """The products of an invoice's lines with their prices and stock by warehouse, in three queries."""
    if not ids:
        return {}
    return {product.pk: product for product in catalog_selectors.product_list(user=user).filter(pk__in=ids)}


def product_options(*, user: User, query: str, limit: int = 20) -> list[Product]:
    products = catalog_selectors.product_list(user=user, search=query, active=True).prefetch_related(None)
    return list(products.select_related("unit")[:limit])


# --- Payments -------------------------------------------------------------------------------------


def payment_page(
    *, user: User, direction: str = "", search: str = "", counterparty: int | None = None, page: int = 1
) -> Page[Payment]:
    """Payments the user sees, newest first; by number, payer name or ИНН, or a visible counterparty."""
    payments = Payment.objects.visible_to(user)
    if counterparty is not None:
        payments = payments.filter(counterparty_id=counterparty)
    if direction in PaymentDirection.values:
        payments = payments.filter(direction=direction)
    query = search.strip()
    if query:
        payments = payments.filter(
            Q(number=query)
            | Q(payer_inn=query)
            | Q(payer_name__icontains=query)
            | Q(
                counterparty__in=party_selectors.search_counterparties(
                    Counterparty.objects.visible_to(user), query
                ).values("pk")
            )
        )
    payments = payments.select_related("counterparty", "currency", "organisation")
    return page_of(payments.order_by("-date", "-pk"), page)


@dataclass
class PaymentCard:
    payment: Payment
    allocations: list[Any]
    bank_document: Any


def payment_card(*, user: User, pk: Any) -> PaymentCard:
    """A payment with its allocations to invoices and the bank statement line it came from, if any."""
    from sdelka.exchange.models import BankDocument

    payment = _get_or_404(
        Payment.objects.visible_to(user).select_related(
            "counterparty", "currency", "organisation", "bank_account", "created_by"
        ),
        pk,
    )
    allocations = payment.allocations.select_related("invoice", "invoice__currency").order_by("invoice__date", "pk")
    document = BankDocument.objects.filter(payment=payment).select_related("run", "run__connection").first()
    return PaymentCard(payment=payment, allocations=list(allocations), bank_document=document)


# --- Tasks and notifications ----------------------------------------------------------------------


def task_page(*, user: User, scope: str = "mine", done: bool = False, page: int = 1) -> Page[Task]:
    tasks = activity_selectors.task_list(user=user, mine=scope == "mine", team=scope == "team")
    tasks = tasks.filter(is_done=done)
    order = ("-done_at", "-pk") if done else (F("due_at").asc(nulls_last=True), "pk")
    return page_of(tasks.order_by(*order), page)


def task_get(*, user: User, pk: Any) -> Task:
    return _get_or_404(activity_selectors.task_list(user=user), pk)


@dataclass(frozen=True)
class Alerts:
    notifications: list[Notification]
    due_tasks: list[Task]

    @property
    def count(self) -> int:
        return len(self.notifications) + len(self.due_tasks)


def alerts(*, user: User, limit: int = 10) -> Alerts:
    """Unread notifications and the user's open tasks that are due now: what the header bell shows."""
    notifications = activity_selectors.notification_list(user=user, unread=True).filter(user=user)
    due = activity_selectors.task_list(user=user, mine=True).filter(is_done=False, due_at__lte=timezone.now())
    return Alerts(
        notifications=list(notifications.order_by("-created_at", "-pk")[:limit]),
        due_tasks=list(due.order_by("due_at", "pk")[:limit]),
    )


# --- Catalogue ------------------------------------------------------------------------------------


@dataclass
class GroupNode:
    group: ProductGroup
    children: list[GroupNode]


def group_tree(*, user: User) -> list[GroupNode]:
    """The product groups as a tree, in one query."""
    nodes: dict[int, GroupNode] = {}
    roots: list[GroupNode] = []
    groups = list(catalog_selectors.product_group_list(user=user).filter(is_active=True))
    for group in groups:
        nodes[group.pk] = GroupNode(group=group, children=[])
    for group in groups:
        parent = nodes.get(group.parent_id) if group.parent_id else None
        (parent.children if parent else roots).append(nodes[group.pk])
    return roots


def product_page(*, user: User, search: str = "", group: int | None = None, page: int = 1) -> Page[Product]:
    return page_of(catalog_selectors.product_list(user=user, search=search, group=group, active=True), page)


def product_get(*, user: User, pk: Any) -> Product:
    return _get_or_404(
        catalog_selectors.product_list(user=user).prefetch_related(
            Prefetch("variants"),
        ),
        pk,
    )

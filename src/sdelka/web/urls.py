from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views
from .views import (
    catalog,
    conflicts,
    contracts,
    counterparties,
    deals,
    exchange,
    invoices,
    payments,
    receivables,
    rules,
    tasks,
)

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification-read"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            template_name="web/password_change.html", success_url=reverse_lazy("web:dashboard")
        ),
        name="password-change",
    ),
    # Counterparties
    path("counterparties/", counterparties.counterparty_list, name="counterparty-list"),
    path("counterparties/new/", counterparties.counterparty_create, name="counterparty-create"),
    path("counterparties/check/", counterparties.counterparty_check, name="counterparty-check"),
    path("counterparties/duplicates/", counterparties.counterparty_duplicates, name="counterparty-duplicates"),
    path("counterparties/options/", counterparties.counterparty_options, name="counterparty-options"),
    path("counterparties/<int:pk>/", counterparties.counterparty_detail, name="counterparty-detail"),
    path("counterparties/<int:pk>/edit/", counterparties.counterparty_edit, name="counterparty-edit"),
    path("counterparties/<int:pk>/access/", counterparties.counterparty_access, name="counterparty-access"),
    path("counterparties/<int:pk>/contacts/", counterparties.contact_add, name="counterparty-contact-add"),
    path("counterparties/<int:pk>/notes/", counterparties.note_add, name="counterparty-note-add"),
    path("counterparties/<int:pk>/contracts/", contracts.contract_add, name="contract-add"),
    path("contracts/<int:pk>/", contracts.contract_edit, name="contract-edit"),
    path("invoices/contracts/", contracts.contract_options, name="invoice-contract-options"),
    # Deals
    path("deals/", deals.deal_board, name="deal-board"),
    path("deals/list/", deals.deal_list, name="deal-list"),
    path("deals/new/", deals.deal_create, name="deal-create"),
    path("deals/<int:pk>/", deals.deal_detail, name="deal-detail"),
    path("deals/<int:pk>/move/", deals.deal_move, name="deal-move"),
    path("deals/<int:pk>/won/", deals.deal_won, name="deal-won"),
    path("deals/<int:pk>/lost/", deals.deal_lost, name="deal-lost"),
    path("deals/<int:pk>/notes/", deals.deal_note_add, name="deal-note-add"),
    # Invoices
    path("invoices/", invoices.invoice_list, name="invoice-list"),
    path("invoices/new/", invoices.invoice_create, name="invoice-create"),
    path("invoices/lines/", invoices.invoice_recalc, name="invoice-recalc"),
    path("invoices/products/", invoices.product_options, name="invoice-product-options"),
    path("invoices/<int:pk>/", invoices.invoice_detail, name="invoice-detail"),
    path("invoices/<int:pk>/edit/", invoices.invoice_edit, name="invoice-edit"),
    path("invoices/<int:pk>/issue/", invoices.invoice_issue, name="invoice-issue"),
    # Payments
    path("payments/", payments.payment_list, name="payment-list"),
    path("receivables/", receivables.receivables_report, name="receivables"),
    path("payments/<int:pk>/", payments.payment_detail, name="payment-detail"),
    # Tasks
    path("tasks/", tasks.task_list, name="task-list"),
    path("tasks/new/", tasks.task_create, name="task-create"),
    path("tasks/<int:pk>/", tasks.task_detail, name="task-detail"),
    path("tasks/<int:pk>/done/", tasks.task_done, name="task-done"),
    # Catalogue
    path("catalogue/", catalog.product_list, name="product-list"),
    path("catalogue/<int:pk>/", catalog.product_detail, name="product-detail"),
    # Exchange with 1C (administrators and integrators)
    path("exchange/", exchange.connection_list, name="exchange-connections"),
    path("exchange/connections/<int:pk>/", exchange.connection_detail, name="exchange-connection"),
    path("exchange/connections/<int:pk>/check/", exchange.connection_check, name="exchange-connection-check"),
    path("exchange/connections/<int:pk>/statement/", exchange.statement_upload, name="exchange-statement-upload"),
    path("payments/statement/", exchange.statement_import, name="statement-import"),
    path("exchange/runs/", exchange.run_list, name="exchange-runs"),
    path("exchange/runs/<int:pk>/", exchange.run_detail, name="exchange-run"),
    path("exchange/runs/<int:pk>/progress/", exchange.run_progress, name="exchange-run-progress"),
    path("exchange/runs/<int:pk>/files/<int:file_pk>/", exchange.run_file, name="exchange-run-file"),
    path("exchange/tasks/<int:pk>/run/", exchange.task_run, name="exchange-task-run"),
    path("exchange/my-tasks/", exchange.my_sync_tasks, name="exchange-my-tasks"),
    # OData mapping rules and sync tasks
    path("exchange/connections/<int:pk>/rules/", rules.rule_list, name="exchange-rules"),
    path("exchange/connections/<int:pk>/rules/new/", rules.rule_create, name="exchange-rule-create"),
    path("exchange/connections/<int:pk>/preset/", rules.preset_load, name="exchange-preset"),
    path("exchange/connections/<int:pk>/tasks/new/", rules.task_create, name="exchange-task-create"),
    path("exchange/rules/<int:pk>/", rules.rule_edit, name="exchange-rule-edit"),
    path("exchange/tasks/<int:pk>/", rules.task_edit, name="exchange-task-edit"),
    # Exchange with 1C: the conflict queue
    path("exchange/conflicts/", conflicts.conflict_list, name="exchange-conflicts"),
    path("exchange/conflicts/<int:pk>/resolve/", conflicts.conflict_resolve, name="exchange-conflict-resolve"),
]

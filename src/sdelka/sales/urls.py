"""The printed invoice; included by the project at "invoices/" (names `sales:invoice-print`, `-pdf`, `-send`)."""

from django.urls import path

from .printing import views

app_name = "sales"

urlpatterns = [
    path("<int:pk>/print/", views.invoice_print, name="invoice-print"),
    path("<int:pk>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("<int:pk>/send/", views.invoice_send, name="invoice-send"),
]

from django.urls import URLPattern, URLResolver, path

from .clientbank import views as clientbank
from .commerceml.views import exchange

app_name = "exchange"

urlpatterns: list[URLPattern | URLResolver] = [
    path("1c/exchange", exchange, name="onec"),
    path("1c/exchange/", exchange),
    path("bitrix/admin/1c_exchange.php", exchange, name="onec-bitrix"),
    path("1c_exchange.php", exchange),
    path("payments/queue/", clientbank.payment_queue, name="payment-queue"),
    path("payments/queue/<int:pk>/match/", clientbank.match_payment, name="payment-match"),
]

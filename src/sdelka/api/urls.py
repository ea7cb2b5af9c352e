from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from sdelka.activities.api import register as register_activities
from sdelka.catalog.api import register as register_catalog
from sdelka.exchange.clientbank.api import register as register_bank
from sdelka.exchange.odata.api import register as register_sync
from sdelka.parties.api import register as register_parties
from sdelka.sales.api import register as register_sales

app_name = "api"

router = DefaultRouter()
for register in (register_parties, register_catalog, register_sales, register_activities, register_bank, register_sync):
    register(router)

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]

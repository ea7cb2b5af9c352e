from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("sdelka.api.urls")),
    path("", include("sdelka.exchange.urls")),
    path("invoices/", include("sdelka.sales.urls")),
    path("", include("django.contrib.auth.urls")),
    path("", include("sdelka.web.urls")),
]

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db

RESOURCES = [
    "/api/v1/counterparties/",
    "/api/v1/products/",
    "/api/v1/price-types/",
    "/api/v1/warehouses/",
    "/api/v1/deals/",
    "/api/v1/invoices/",
    "/api/v1/payments/",
    "/api/v1/tasks/",
]


def test_openapi_schema_lists_every_resource(client, staff):
    client.force_login(staff.manager)
    response = client.get(reverse("api:schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for resource in RESOURCES:
        assert resource in paths, resource
        assert f"{resource}{{id}}/" in paths, resource


def test_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "Counterparty" in (tmp_path / "schema.yaml").read_text()


def test_api_docs_are_served_locally_not_from_a_cdn(client, staff):
    client.force_login(staff.manager)
    page = client.get(reverse("api:docs")).content.decode()

    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page
    assert "/static/drf_spectacular_sidecar/" in page


def test_anonymous_requests_are_refused(client):
    assert client.get("/api/v1/counterparties/").status_code in (401, 403)


def test_token_login_and_use(client, staff):
    response = client.post(reverse("api:token"), {"username": "manager", "password": "secret-pass-123"})
    token = response.json()["token"]

    listing = client.get("/api/v1/counterparties/", HTTP_AUTHORIZATION=f"Token {token}")

    assert listing.status_code == 200
    assert listing.json()["count"] == 0

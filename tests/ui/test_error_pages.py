"""The portal's own error pages (403, 404, 500, an expired form), with DEBUG on as in the
embedded mode and off as in production: never Django's technical pages (they list the URL
patterns and name the views), the tenant's switcher and menu kept where the person has that
tenant, and nothing about a tenant they do not have.
acme: alice admin, bob member, carol viewer; globex: gina admin."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings as SettingsWrapper

from tenants.models import Tenant, User
from tenants.views.dashboard import TenantDashboardView
from tests.conftest import browser_client_for
from tests.ui.conftest import htmx
from tests.vms.conftest import make_vm_row

#: What Django's technical pages say, and one of the patterns its 404 page lists.
TECHNICAL_PAGE_WORDS = ("URLconf", "Raised by", "Django tried these URL patterns", "slug:slug")


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request: pytest.FixtureRequest, settings: SettingsWrapper) -> bool:
    settings.DEBUG = request.param
    return bool(request.param)


def switcher_says(page: str) -> str:
    """The tenant the top bar's switcher names ("Choose a tenant" when none)."""
    found = re.search(r'<span class="switcher-name">([^<]+)</span>', page)
    assert found, "no tenant switcher"
    return found.group(1)


def menu_sections(page: str) -> list[str]:
    """The side navigation's section titles (a tenant's menu is titled with its name)."""
    return re.findall(r'<p class="nav-title">([^<]+)</p>', page)


def assert_portal_page(page: str, heading: str) -> None:
    assert f"<h1>{heading}</h1>" in page
    leaked = [words for words in TECHNICAL_PAGE_WORDS if words in page]
    assert leaked == [], f"Django's technical page shows through: {leaked}"


def test_a_deleted_vm_is_the_portals_404_inside_the_tenant(
    debug: bool, acme: Tenant, bob: User
) -> None:
    vm = make_vm_row(acme, name="web")
    url = reverse("vm-detail", args=["acme", vm.pk])
    vm.delete()

    response = browser_client_for(bob).get(url)

    assert response.status_code == 404
    page = response.content.decode()
    assert_portal_page(page, "Nothing here")
    assert "what it showed may have been deleted" in page
    assert switcher_says(page) == "Acme Corp"
    assert menu_sections(page) == ["Acme Corp", "Account"]
    assert f'href="{reverse("tenant-dashboard", args=["acme"])}">Back to Acme Corp</a>' in page


def test_an_address_no_route_matches_is_the_portals_404(
    debug: bool, acme: Tenant, bob: User
) -> None:
    response = browser_client_for(bob).get("/t/acme/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert_portal_page(page, "Nothing here")
    assert switcher_says(page) == "Acme Corp"


@pytest.mark.parametrize("path", ["/t/globex/vms/{pk}/", "/t/globex/", "/t/globex/nothing/"])
def test_another_tenants_address_does_not_reveal_the_tenant(
    debug: bool, acme: Tenant, globex: Tenant, bob: User, path: str
) -> None:
    theirs = make_vm_row(globex, name="secret-db")

    response = browser_client_for(bob).get(path.format(pk=theirs.pk))

    assert response.status_code == 404
    page = response.content.decode()
    assert_portal_page(page, "Nothing here")
    assert switcher_says(page) == "Choose a tenant"
    assert menu_sections(page) == ["Account"]
    for trace in ("Globex", "globex", "secret-db"):
        assert trace not in page


def test_signed_out_visitors_get_the_plain_404(debug: bool, acme: Tenant) -> None:
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert_portal_page(page, "Nothing here")
    assert 'class="auth-main"' in page  # the sign-in layout: no menus for nobody


def test_a_refusal_keeps_the_tenant_switcher_and_menu(
    debug: bool, acme: Tenant, carol: User
) -> None:
    response = browser_client_for(carol).get(reverse("vm-create", args=["acme"]))

    assert response.status_code == 403
    page = response.content.decode()
    assert_portal_page(page, "You cannot do this")
    assert "Your role in this tenant is read-only." in page
    assert switcher_says(page) == "Acme Corp"
    assert menu_sections(page) == ["Acme Corp", "Account"]


def test_an_unexpected_error_is_the_portals_500_with_the_tenant_kept(
    acme: Tenant, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(TenantDashboardView, "get_context_data", broken)
    client = browser_client_for(bob)
    client.raise_request_exception = False

    response = client.get(reverse("tenant-dashboard", args=["acme"]))

    assert response.status_code == 500
    page = response.content.decode()
    assert_portal_page(page, "Something went wrong on our side")
    assert "a bug" not in page
    assert switcher_says(page) == "Acme Corp"
    assert menu_sections(page) == ["Acme Corp", "Account"]


def test_when_the_error_page_breaks_too_the_plain_500_still_answers(
    acme: Tenant, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(TenantDashboardView, "get_context_data", broken)
    monkeypatch.setattr("butler_portal.errors.tenant_in_path", broken)
    client = browser_client_for(bob)
    client.raise_request_exception = False

    response = client.get(reverse("tenant-dashboard", args=["acme"]))

    assert response.status_code == 500
    page = response.content.decode()
    assert_portal_page(page, "Something went wrong on our side")
    assert 'class="auth-main"' in page


def test_an_expired_form_keeps_the_tenant(debug: bool, acme: Tenant, bob: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)

    response = client.post(reverse("vm-create", args=["acme"]), {"name": "web"})

    assert response.status_code == 403
    page = response.content.decode()
    assert_portal_page(page, "This form has expired")
    assert switcher_says(page) == "Acme Corp"


def test_a_form_refused_for_want_of_a_cookie_says_so(debug: bool, acme: Tenant) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("login"), {"username": "bob", "password": "x"})

    assert response.status_code == 403
    assert "Your browser seems to block cookies for this site" in response.content.decode()


@pytest.mark.parametrize(
    ("who", "path", "status", "sentence"),
    [
        (
            "bob",
            "/t/acme/vms/{deleted}/",
            404,
            "This page does not exist: what it showed may have been deleted.",
        ),
        ("carol", "/t/acme/vms/new/", 403, "Your role in this tenant is read-only."),
    ],
)
def test_htmx_requests_get_one_plain_sentence(
    debug: bool,
    acme: Tenant,
    personas: dict[str, User],
    who: str,
    path: str,
    status: int,
    sentence: str,
) -> None:
    vm = make_vm_row(acme, name="web")
    vm.delete()

    response = browser_client_for(personas[who]).get(
        path.format(deleted=vm.pk), headers=htmx("vm-panel")
    )

    assert response.status_code == status
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == sentence

"""Members and invitations: read-only for viewers, inline changes for admins."""

from __future__ import annotations

import json
import re

from django.urls import reverse

from tenants import services
from tenants.access import TenantRole
from tenants.audit import Actor
from tenants.models import AuditEvent, Invitation, Membership, Tenant, User
from tests.conftest import browser_client_for, make_user
from tests.ui.conftest import HTMX_HEADERS, htmx, queries_for_get

MEMBERS = reverse("members", args=["acme"])


def membership_of(user: User, tenant: Tenant) -> Membership:
    return Membership.objects.get(tenant=tenant, user=user)


def role_url(membership: Membership) -> str:
    return reverse("member-role", args=[membership.tenant.slug, membership.pk])


def test_viewers_see_the_list_read_only(alice: User, bob: User, carol: User) -> None:
    text = browser_client_for(carol).get(MEMBERS).content.decode()
    for username in ("alice", "bob", "carol"):
        assert username in text
    assert 'name="role"' not in text
    assert "Invite someone" not in text
    assert "Remove" not in text
    assert "Only tenant admins can change roles" in text


def test_admins_get_role_selects_and_the_invite_form(alice: User, bob: User) -> None:
    text = browser_client_for(alice).get(MEMBERS).content.decode()
    assert text.count('name="role"') == 3  # one select per member, one in the invite form
    assert "Create invitation link" in text
    assert f'for="role-{membership_of(bob, bob.memberships.get().tenant).pk}"' in text


def test_inline_role_change_swaps_the_row(alice: User, bob: User, acme: Tenant) -> None:
    target = membership_of(bob, acme)
    response = browser_client_for(alice).post(
        role_url(target), {"role": TenantRole.VIEWER}, headers=htmx(f"member-{target.pk}")
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert text.lstrip().startswith(f'<tr id="member-{target.pk}">')
    assert '<option value="viewer" selected>' in text
    assert "bob&#x27;s role is now Viewer." in text  # the toast, out of band
    assert 'hx-swap-oob="beforeend"' in text
    target.refresh_from_db()
    assert target.role == TenantRole.VIEWER
    event = AuditEvent.objects.get(action="change_role")
    assert event.actor == alice
    assert event.changes["role"] == ["member", "viewer"]


def test_last_admin_refusal_shows_on_the_row(alice: User, acme: Tenant) -> None:
    own = membership_of(alice, acme)
    response = browser_client_for(alice).post(
        role_url(own), {"role": TenantRole.MEMBER}, headers=htmx(f"member-{own.pk}")
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "The last admin of a tenant cannot be demoted." in text
    assert f'aria-describedby="role-{own.pk}-error"' in text
    assert f'id="role-{own.pk}-error" role="alert"' in text
    assert '<option value="admin" selected>' in text  # the row shows the real role again
    own.refresh_from_db()
    assert own.role == TenantRole.ADMIN


def test_role_change_without_javascript_redirects_with_a_message(alice: User, acme: Tenant) -> None:
    own = membership_of(alice, acme)
    client = browser_client_for(alice)
    response = client.post(role_url(own), {"role": TenantRole.VIEWER}, follow=True)
    assert response.redirect_chain == [(MEMBERS, 302)]
    assert b"The last admin of a tenant cannot be demoted." in response.content


def test_admins_demoting_themselves_get_the_page_redrawn(
    alice: User, gina: User, acme: Tenant
) -> None:
    Membership.objects.create(tenant=acme, user=gina, role=TenantRole.ADMIN)
    own = membership_of(alice, acme)
    response = browser_client_for(alice).post(
        role_url(own), {"role": TenantRole.MEMBER}, headers=htmx(f"member-{own.pk}")
    )
    assert response["HX-Refresh"] == "true"
    own.refresh_from_db()
    assert own.role == TenantRole.MEMBER


def test_removing_asks_first_then_removes(alice: User, bob: User, acme: Tenant) -> None:
    client = browser_client_for(alice)
    url = reverse("member-remove", args=["acme", membership_of(bob, acme).pk])
    dialog = client.get(url, headers=htmx("modal-body"))
    assert b"Remove bob?" in dialog.content
    assert b"<html" not in dialog.content
    assert b'hx-target="#modal-body"' in dialog.content

    response = client.post(url, headers=htmx("modal-body"))
    assert response["HX-Redirect"] == MEMBERS
    assert not Membership.objects.filter(tenant=acme, user=bob).exists()
    assert b"bob was removed." in client.get(MEMBERS).content


def test_removing_the_last_admin_is_refused_in_the_dialog(alice: User, acme: Tenant) -> None:
    url = reverse("member-remove", args=["acme", membership_of(alice, acme).pk])
    response = browser_client_for(alice).post(url, headers=htmx("modal-body"))
    assert response.status_code == 200
    assert b"The last admin of a tenant cannot be removed." in response.content
    assert Membership.objects.filter(tenant=acme, user=alice).exists()


def test_the_confirmation_works_as_a_page_without_javascript(
    alice: User, bob: User, acme: Tenant
) -> None:
    url = reverse("member-remove", args=["acme", membership_of(bob, acme).pk])
    client = browser_client_for(alice)
    page = client.get(url)
    assert b"<html" in page.content
    assert b"hx-post" not in page.content
    assert client.post(url)["Location"] == MEMBERS


def test_invitation_link_is_shown_once(alice: User, acme: Tenant) -> None:
    client = browser_client_for(alice)
    response = client.post(
        reverse("invitation-create", args=["acme"]),
        {"role": TenantRole.VIEWER, "email": "new@example.com"},
        headers=htmx("invite-card"),
    )
    text = response.content.decode()
    link = re.search(r"http://testserver/invitations/([\w-]+)/", text)
    assert link is not None
    assert text.lstrip().startswith('<section id="invite-card"')
    assert "no-store" in response["Cache-Control"]
    assert json.loads(response["HX-Trigger"]) == {"invitations-changed": {}}
    invitation = Invitation.objects.get()
    assert (invitation.role, invitation.email) == (TenantRole.VIEWER, "new@example.com")
    assert services.invitation_lookup(link.group(1)) == invitation

    # The secret is gone from every later page, the list shows the pending invitation.
    later = client.get(MEMBERS).content.decode()
    assert link.group(1) not in later
    assert "new@example.com" in later
    assert "Pending" in later


def test_invitation_form_errors_keep_the_input(alice: User) -> None:
    response = browser_client_for(alice).post(
        reverse("invitation-create", args=["acme"]),
        {"role": TenantRole.ADMIN, "email": "not-an-email"},
        headers=htmx("invite-card"),
    )
    text = response.content.decode()
    assert "Enter a valid email address." in text
    assert 'value="not-an-email"' in text
    assert 'aria-invalid="true" aria-describedby="id_email_helptext id_email_error"' in text
    assert '<option value="admin" selected>' in text
    assert not Invitation.objects.exists()


def test_invitation_list_refreshes_as_a_fragment(alice: User, acme: Tenant) -> None:
    services.invitation_create(
        actor=Actor(user=alice), tenant=acme, role="member", email="x@example.com"
    )
    response = browser_client_for(alice).get(MEMBERS, headers=htmx("invitation-list"))
    text = response.content.decode()
    assert text.lstrip().startswith('<section id="invitation-list"')
    assert "x@example.com" in text


def test_revoking_an_invitation(alice: User, acme: Tenant) -> None:
    invitation, _ = services.invitation_create(actor=Actor(user=alice), tenant=acme, role="member")
    url = reverse("invitation-revoke", args=["acme", invitation.pk])
    client = browser_client_for(alice)
    assert client.post(url, headers=htmx("modal-body"))["HX-Redirect"] == MEMBERS
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    again = client.post(url, headers=htmx("modal-body"))
    assert b"This invitation is already revoked." in again.content


def test_invitations_of_another_tenant_are_not_found(
    alice: User, gina: User, globex: Tenant
) -> None:
    invitation, _ = services.invitation_create(actor=Actor(user=gina), tenant=globex, role="member")
    response = browser_client_for(alice).post(
        reverse("invitation-revoke", args=["acme", invitation.pk])
    )
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_members_page_query_count_is_constant(alice: User, acme: Tenant) -> None:
    client = browser_client_for(alice)
    services.invitation_create(actor=Actor(user=alice), tenant=acme, role="member")
    few = queries_for_get(client, MEMBERS)
    for number in range(10):
        user = make_user(f"extra{number}")
        Membership.objects.create(tenant=acme, user=user, role=TenantRole.MEMBER)
        services.invitation_create(actor=Actor(user=alice), tenant=acme, role="viewer")
    assert queries_for_get(client, MEMBERS) == few


def test_htmx_requests_without_a_known_target_get_the_page(alice: User) -> None:
    response = browser_client_for(alice).get(MEMBERS, headers=HTMX_HEADERS)
    assert b"<html" in response.content

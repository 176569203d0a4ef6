"""/api/v1/invitations/: links that make people members, shown once, revocable, expiring."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.urls import resolve, reverse
from django.utils import timezone

from tenants.access import TenantRole
from tenants.audit import Actor
from tenants.models import AuditEvent, Invitation, Membership, Tenant, User
from tenants.services import invitation_create
from tests.api_mixin import APIEndpointTests, token_client_for
from tests.conftest import api_client_for

ACCEPT_URL = "/api/v1/invitations/accept/"


def invite(tenant: Tenant, role: str = TenantRole.MEMBER) -> tuple[Invitation, str]:
    """An invitation from the tenant's (first) admin, with its secret."""
    admin = tenant.memberships.filter(role=TenantRole.ADMIN).first()
    assert admin is not None, "the tenant needs an admin to invite"
    return invitation_create(actor=Actor(admin.user), tenant=tenant, role=role)


def revoke_url(invitation: Invitation) -> str:
    return reverse("api:invitation-revoke", args=[invitation.pk])


class TestInvitationEndpoint(APIEndpointTests):
    basename = "invitation"
    # Invitations are member management: members and viewers do not even see them.
    viewers = frozenset({"alice", "oscar", "audrey"})
    creators = frozenset({"alice", "oscar"})

    def make_object(self, tenant: Tenant) -> Invitation:
        return invite(tenant)[0]

    def create_payload(self) -> dict[str, object]:
        return {"tenant": "acme", "role": "viewer", "email": "newcomer@example.test"}


def test_the_link_is_shown_once_and_only_its_digest_is_kept(alice: User) -> None:
    client = api_client_for(alice)
    created = client.post(
        reverse("api:invitation-list"), {"tenant": "acme", "role": "viewer"}, format="json"
    )

    assert created.status_code == 201
    secret = created.data["token"]
    assert created.data["url"] == f"http://testserver/invitations/{secret}/"
    assert resolve(f"/invitations/{secret}/").url_name == "invitation"  # the UI's landing page
    invitation = Invitation.objects.get(pk=created.data["id"])
    assert invitation.token_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert invitation.created_by == alice
    again = client.get(reverse("api:invitation-detail", args=[invitation.pk])).data
    assert again["status"] == "pending"
    assert "token" not in again
    assert "url" not in again


def test_accepting_makes_a_membership(nobody: User, alice: User, acme: Tenant) -> None:
    invitation, secret = invite(acme, TenantRole.VIEWER)

    response = api_client_for(nobody).post(ACCEPT_URL, {"token": secret}, format="json")

    assert response.status_code == 200
    assert (response.data["tenant"], response.data["user"], response.data["role"]) == (
        "acme",
        "nobody",
        "viewer",
    )
    assert Membership.objects.get(user=nobody, tenant=acme).role == TenantRole.VIEWER
    invitation.refresh_from_db()
    assert (invitation.status, invitation.accepted_by) == ("accepted", nobody)
    assert AuditEvent.objects.filter(action="accept_invitation", actor=nobody).exists()


def test_an_accepted_expired_revoked_or_unknown_link_is_refused(
    nobody: User, alice: User, gina: User, acme: Tenant
) -> None:
    _, accepted_secret = invite(acme)
    api_client_for(gina).post(ACCEPT_URL, {"token": accepted_secret}, format="json")
    expired, expired_secret = invite(acme)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(1))
    revoked, revoked_secret = invite(acme)
    Invitation.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    client = api_client_for(nobody)

    answers = {
        name: client.post(ACCEPT_URL, {"token": secret}, format="json")
        for name, secret in {
            "accepted": accepted_secret,
            "expired": expired_secret,
            "revoked": revoked_secret,
            "unknown": "not-a-real-secret",
        }.items()
    }

    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 400
    )
    assert "expired" in answers["expired"].data["non_field_errors"][0]
    assert "revoked" in answers["revoked"].data["non_field_errors"][0]
    assert not Membership.objects.filter(user=nobody).exists()


def test_accepting_needs_a_signed_in_user_and_a_writing_token(
    nobody: User, alice: User, acme: Tenant
) -> None:
    _, secret = invite(acme)
    read_only, _ = token_client_for(nobody, "read")

    anonymous = api_client_for(None).post(ACCEPT_URL, {"token": secret}, format="json")
    through_read_only_token = read_only.post(ACCEPT_URL, {"token": secret}, format="json")

    assert (anonymous.status_code, through_read_only_token.status_code) == (401, 403)
    assert not Membership.objects.filter(user=nobody).exists()


def test_admins_revoke_and_the_link_stops_working(personas: dict[str, User], acme: Tenant) -> None:
    invitation, secret = invite(acme)
    refused = {
        name: api_client_for(personas[name]).post(revoke_url(invitation)).status_code
        for name in ("bob", "audrey", "gina")
    }
    assert refused == {"bob": 404, "audrey": 403, "gina": 404}

    revoked = api_client_for(personas["alice"]).post(revoke_url(invitation))
    revoked_again = api_client_for(personas["alice"]).post(revoke_url(invitation))
    accepted = api_client_for(personas["nobody"]).post(ACCEPT_URL, {"token": secret}, format="json")

    assert (revoked.status_code, revoked.data["status"]) == (200, "revoked")
    assert revoked_again.status_code == 400
    assert accepted.status_code == 400

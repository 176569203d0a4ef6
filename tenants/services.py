"""Every write to tenants, memberships, invitations, quotas and tokens.

Views, API viewsets, admin actions and tasks call these keyword-only functions; they hold
the business rules (last admin stays, quota never silently drops below usage, reservations
are race-free) and write the audit trail in the same transaction. Authorisation (may this
actor touch this tenant at all?) is decided before, through ``for_user`` and ``user_can``.

Errors are Django ``ValidationError``s keyed by field, so a form shows them on the field
and the API returns them as a structured 400.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from butler_portal.realtime import ACCESS_CHANGED, publish_platform_event, publish_tenant_event
from butler_portal.tasks import enqueue_after_commit
from tenants.access import TenantRole
from tenants.audit import Actor, audit_record, diff
from tenants.models import (
    ApiToken,
    Invitation,
    Membership,
    Quota,
    QuotaClaim,
    QuotaResource,
    Tenant,
    TenantNetwork,
    User,
)
from tenants.network import (
    NETWORK_EVENT,
    lb_share_resize,
    network_allocate,
    network_request_apply,
)
from tenants.selectors import format_amount, management_client, quota_used

if TYPE_CHECKING:
    from butler_portal.watcher.drift import DriftReport

# --- Tenants ------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(
    *, actor: Actor, slug: str, name: str, limits: Mapping[str, int] | None = None
) -> Tenant:
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": "A tenant with this slug already exists."})
    tenant = Tenant(slug=slug, name=name)
    tenant.full_clean()
    tenant.save()
    quota = Quota.objects.create(tenant=tenant, **_checked_limits(limits or {}))
    # Addresses are allocated in this transaction: a tenant without room for its network
    # is refused whole, nothing half-created remains.
    network = network_allocate(tenant=tenant)
    audit_record(
        actor=actor,
        action="create",
        tenant=tenant,
        target=tenant,
        changes={"name": name, "quota": quota.limits(), "subnet": network.subnet_cidr},
    )
    network_request_apply(tenant=tenant)
    return tenant


@transaction.atomic
def tenant_update(*, actor: Actor, tenant: Tenant, name: str) -> Tenant:
    before = {"name": tenant.name}
    tenant.name = name
    tenant.full_clean()
    tenant.save(update_fields=["name"])
    audit_record(
        actor=actor,
        action="update",
        tenant=tenant,
        target=tenant,
        changes=diff(before, {"name": name}),
    )
    return tenant


@transaction.atomic
def tenant_set_state(*, actor: Actor, tenant: Tenant, state: str) -> Tenant:
    """Suspend or reactivate.

    A suspended tenant's members keep read access; nothing new can be created, neither in
    the portal nor in its Kubernetes namespace (its ResourceQuota admits no new objects).
    """
    if state not in {Tenant.State.ACTIVE, Tenant.State.SUSPENDED}:
        raise ValidationError({"state": "Choose active or suspended."})
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if locked.state == Tenant.State.DELETING:
        raise ValidationError({"state": "The tenant is being deleted."})
    if locked.state == state:
        return locked
    before = locked.state
    locked.state = state
    locked.save(update_fields=["state"])
    action = "suspend" if state == Tenant.State.SUSPENDED else "resume"
    audit_record(
        actor=actor, action=action, tenant=locked, target=locked, changes={"state": [before, state]}
    )
    network_request_apply(tenant=locked)
    tenant.state = locked.state
    return locked


@transaction.atomic
def tenant_delete(*, actor: Actor, tenant: Tenant) -> bool:
    """Delete an empty tenant; one that still holds quota (clusters, VMs) is refused.

    With Kubernetes configured the tenant goes to Deleting, a task removes its namespace and
    network, and the row goes once Kubernetes confirms. Returns True when it is gone now.
    """
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    holders = list(locked.quota_claims.values_list("subject", flat=True)[:5])
    if holders:
        raise ValidationError(
            {
                "__all__": f"Delete the tenant's resources first (still holding quota: {', '.join(holders)})."
            }
        )
    audit_record(
        actor=actor, action="delete", tenant=locked, target=locked, object_repr=locked.slug
    )
    if settings.KUBE_MODE == "off" or not TenantNetwork.objects.filter(tenant=locked).exists():
        locked.delete()
        return True
    from tenants.tasks import delete_tenant

    locked.state = Tenant.State.DELETING
    locked.save(update_fields=["state"])
    TenantNetwork.objects.filter(tenant=locked).update(
        state=TenantNetwork.State.DELETING, message="Removing the namespace and network."
    )
    enqueue_after_commit(delete_tenant, locked.pk)
    tenant.state = locked.state
    return False


def tenant_delete_finish(*, tenant_id: int) -> None:
    """The last step of a deletion, once Kubernetes has let go of the tenant's objects."""
    Tenant.objects.filter(pk=tenant_id, state=Tenant.State.DELETING).delete()


@transaction.atomic
def tenant_network_retry(*, actor: Actor, tenant: Tenant) -> TenantNetwork:
    """Apply a Failed tenant network again (operators; the caller checks who may).

    A network fails only when Kubernetes rejects or refuses it for a reason that does not
    pass by itself (what does pass is retried automatically), so a person fixes the cause
    and then asks for this. The failure's message goes into the audit trail, since applying
    clears it.
    """
    # Lock the tenant, then its network (the order quota_update and the watcher take).
    locked_tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    network = (
        TenantNetwork.objects.select_for_update(of=("self",)).filter(tenant=locked_tenant).first()
    )
    if network is None:
        raise ValidationError(
            {NON_FIELD_ERRORS: f"{locked_tenant.slug} has no network to retry."},
            code="invalid_state",
        )
    if network.state != TenantNetwork.State.FAILED:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: (
                    f"Only a failed network can be retried; the network of {locked_tenant.slug}"
                    f" is {network.get_state_display().lower()}."
                )
            },
            code="invalid_state",
        )
    audit_record(
        actor=actor,
        action="retry",
        tenant=locked_tenant,
        target=network,
        object_repr=f"{locked_tenant.slug} network",
        changes={"previous_error": network.message},
    )
    # Open network panels leave Failed at once (sent on commit, before the apply task runs).
    publish_tenant_event(
        locked_tenant.pk, NETWORK_EVENT, network.pk, state=TenantNetwork.State.PROVISIONING
    )
    network_request_apply(tenant=locked_tenant)
    network.refresh_from_db()
    return network


#: What a suspended tenant may still do with what it has: look (a VM's console, a cluster's
#: kubeconfig) and give resources back (stop a VM, hibernate a cluster, withdraw a VM's ports,
#: turn a cluster's deletion protection off to delete it, delete), never take more or change
#: anything else. The banner of templates/components/tenant_state_banner.html says it.
ALLOWED_WHILE_SUSPENDED = frozenset(
    {"console", "kubeconfig", "stop", "hibernate", "unexpose", "unprotect", "delete"}
)


def suspension_refusal(tenant: Tenant, action: str) -> str:
    """Why the tenant's state refuses ``action`` on one of its objects, as the rest of a
    sentence that starts with the tenant's name ("" when it does not): a suspended (or
    deleting) tenant may only give back (``ALLOWED_WHILE_SUSPENDED``). One rule for clusters
    and VMs, their services and their pages."""
    if tenant.is_active or action in ALLOWED_WHILE_SUSPENDED:
        return ""
    state = tenant.get_state_display().lower()
    return f"is {state}: resources can only be given back (stopped, hibernated, deleted)."


def ensure_tenant_allows(tenant: Tenant, action: str) -> None:
    """Refuse ``action`` on an existing object of a tenant whose state forbids it."""
    if refusal := suspension_refusal(tenant, action):
        raise ValidationError(
            {"__all__": f"Tenant {tenant.slug} {refusal}"}, code="tenant_inactive"
        )


def ensure_tenant_active(tenant: Tenant) -> None:
    """Refuse new resources in a suspended (or deleting) tenant."""
    if not tenant.is_active:
        raise ValidationError(
            {
                "__all__": f"Tenant {tenant.slug} is {tenant.get_state_display().lower()}: nothing new can be created."
            }
        )


# --- Quotas -------------------------------------------------------------------------------

# Tells open dashboards to refresh their usage gauges.
QUOTA_EVENT = "quota"


def _checked_limits(limits: Mapping[str, int]) -> dict[str, int]:
    errors = {}
    cleaned = {}
    for resource, value in limits.items():
        if resource not in QuotaResource.values:
            errors[resource] = "Not a quota resource."
        elif not isinstance(value, int) or value < 0:
            errors[resource] = "Must be a whole number, zero or more."
        else:
            cleaned[resource] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


@transaction.atomic
def quota_update(
    *, actor: Actor, tenant: Tenant, limits: Mapping[str, int], force: bool = False
) -> Quota:
    """Change a tenant's limits. Lowering one below current usage needs ``force``."""
    cleaned = _checked_limits(limits)
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    quota = Quota.objects.get(tenant=locked)
    used = quota_used(locked)
    if not force:
        below = {
            resource: (
                f"{locked.slug} already uses {format_amount(resource, used[resource])}; "
                "confirm with force to set a lower limit."
            )
            for resource, value in cleaned.items()
            if value < used[resource]
        }
        if below:
            raise ValidationError(below, code="below_usage")
    before = quota.limits()
    for resource, value in cleaned.items():
        setattr(quota, resource, value)
    quota.save()
    changes = diff(before, quota.limits())
    if "load_balancer_ips" in changes and TenantNetwork.objects.filter(tenant=locked).exists():
        # The MetalLB share follows the quota; never cut below the addresses in use.
        lb_share_resize(
            tenant=locked, count=max(quota.load_balancer_ips, used["load_balancer_ips"])
        )
    if changes:
        network_request_apply(tenant=locked)
        publish_tenant_event(locked.pk, QUOTA_EVENT)
        audit_record(
            actor=actor,
            action="update",
            tenant=locked,
            target=quota,
            changes={**changes, **({"forced": True} if force else {})},
        )
    return quota


def quota_reserve(*, tenant: Tenant, subject: str, amounts: Mapping[str, int]) -> QuotaClaim:
    """Claim ``amounts`` of the tenant's quota for ``subject``, or raise ValidationError.

    Must run inside the caller's transaction, so the claim lives and dies with the object
    that needs it. The tenant row is locked first: concurrent reservations for the same
    tenant queue up here, and each one counts what the previous ones committed. A subject
    that already holds a claim is resized (scale up or down); only increases are checked.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("quota_reserve must run inside transaction.atomic()")
    cleaned = _checked_limits(amounts)
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    limits = Quota.objects.get(tenant=locked).limits()
    claim = QuotaClaim.objects.filter(tenant=locked, subject=subject).first()
    held = claim.amounts() if claim else dict.fromkeys(QuotaResource.values, 0)
    used = quota_used(locked)
    errors = {}
    for resource, wanted in cleaned.items():
        extra = wanted - held[resource]
        available = max(limits[resource] - used[resource], 0)
        if extra > 0 and extra > available:
            errors[resource] = (
                f"Needs {format_amount(resource, extra)} more {QuotaResource(resource).label.lower()}"
                f" but only {format_amount(resource, available)} of "
                f"{format_amount(resource, limits[resource])} is left in the quota."
            )
    if errors:
        raise ValidationError(errors, code="quota_exceeded")
    claim = claim or QuotaClaim(tenant=locked, subject=subject)
    for resource, wanted in cleaned.items():
        setattr(claim, resource, wanted)
    claim.save()
    publish_tenant_event(locked.pk, QUOTA_EVENT)
    return claim


def quota_error_on_fields(error: ValidationError, fields: Mapping[str, str]) -> ValidationError:
    """Re-key a quota refusal (by resource) onto the form fields the user can change.

    ``fields`` maps a quota resource to the field that drives it; the rest go to the form as
    a whole. The messages already name the resource ("Needs 4 more vcpu but only ...").
    """
    by_field: dict[str, list[str]] = {}
    for resource, messages in error.message_dict.items():
        by_field.setdefault(fields.get(resource, NON_FIELD_ERRORS), []).extend(messages)
    return ValidationError(by_field, code="quota_exceeded")


def quota_release(*, tenant: Tenant, subject: str) -> None:
    """Give back everything ``subject`` holds. Idempotent."""
    released, _ = QuotaClaim.objects.filter(tenant=tenant, subject=subject).delete()
    if released:
        publish_tenant_event(tenant.pk, QUOTA_EVENT)


# --- Members and invitations --------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _other_admins_exist(membership: Membership) -> bool:
    return (
        Membership.objects.filter(
            tenant=membership.tenant, role=TenantRole.ADMIN, user__is_active=True
        )
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def membership_change_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    if role not in TenantRole.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    # Lock the tenant so two admins demoting each other at once cannot both succeed.
    Tenant.objects.select_for_update().get(pk=membership.tenant_id)
    demoting_admin = membership.role == TenantRole.ADMIN and role != TenantRole.ADMIN
    if demoting_admin and not _other_admins_exist(membership):
        raise ValidationError({"role": "The last admin of a tenant cannot be demoted."})
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="change_role",
        tenant=membership.tenant,
        target=membership,
        changes={"user": membership.user.get_username(), "role": [before, role]},
    )
    publish_tenant_event(membership.tenant_id, ACCESS_CHANGED)
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, membership: Membership) -> None:
    Tenant.objects.select_for_update().get(pk=membership.tenant_id)
    if membership.role == TenantRole.ADMIN and not _other_admins_exist(membership):
        raise ValidationError({"__all__": "The last admin of a tenant cannot be removed."})
    audit_record(
        actor=actor,
        action="remove_member",
        tenant=membership.tenant,
        target=membership,
        changes={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()
    publish_tenant_event(membership.tenant_id, ACCESS_CHANGED)


@transaction.atomic
def membership_add(*, actor: Actor, tenant: Tenant, user: User, role: str) -> Membership:
    """Add a user directly (operators onboarding a tenant; the demo seed)."""
    if role not in TenantRole.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    membership, created = Membership.objects.get_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    if not created:
        raise ValidationError(
            {"user": f"{user.get_username()} is already a member of {tenant.slug}."}
        )
    audit_record(
        actor=actor,
        action="add_member",
        tenant=tenant,
        target=membership,
        changes={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def invitation_create(
    *, actor: Actor, tenant: Tenant, role: str, email: str = "", invite_url_base: str = ""
) -> tuple[Invitation, str]:
    """Create an invitation and return it with its one-time secret (for the link).

    When an email backend is configured and an address given, the link is also mailed.
    """
    if role not in TenantRole.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    secret = secrets.token_urlsafe(32)
    invitation = Invitation(
        tenant=tenant,
        role=role,
        email=email,
        token_digest=_digest(secret),
        created_by=actor.user,
        expires_at=timezone.now() + timedelta(hours=settings.INVITATION_LIFETIME_HOURS),
    )
    invitation.full_clean()
    invitation.save()
    audit_record(
        actor=actor,
        action="invite",
        tenant=tenant,
        target=invitation,
        changes={"role": role, "email": email},
    )
    if email and settings.INVITATION_EMAILS_ENABLED and invite_url_base:
        link = f"{invite_url_base}{secret}/"
        transaction.on_commit(
            lambda: send_mail(
                f"You are invited to {tenant.name} on Butler Portal",
                f"Open this link to join {tenant.name} as {role}: {link}\n"
                f"It expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
                None,
                [email],
            )
        )
    return invitation, secret


def invitation_lookup(secret: str) -> Invitation | None:
    return Invitation.objects.select_related("tenant").filter(token_digest=_digest(secret)).first()


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    if not invitation.is_usable:
        raise ValidationError({"__all__": f"This invitation is already {invitation.status}."})
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor, action="revoke_invitation", tenant=invitation.tenant, target=invitation
    )
    return invitation


@transaction.atomic
def invitation_accept(*, actor: Actor, secret: str) -> Membership:
    """Make the acting user a member. An existing member keeps the higher of the two roles."""
    user = actor.user
    if user is None:
        raise ValidationError({"__all__": "Sign in to accept an invitation."})
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("tenant")
        .filter(token_digest=_digest(secret))
        .first()
    )
    if invitation is None or not invitation.is_usable:
        status = invitation.status if invitation else "unknown"
        raise ValidationError({"__all__": f"This invitation link is {status} and cannot be used."})
    membership, created = Membership.objects.get_or_create(
        tenant=invitation.tenant, user=user, defaults={"role": invitation.role}
    )
    if not created and _role_rank(invitation.role) > _role_rank(membership.role):
        membership.role = invitation.role
        membership.save(update_fields=["role"])
    invitation.accepted_by = user
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_by", "accepted_at"])
    audit_record(
        actor=actor,
        action="accept_invitation",
        tenant=invitation.tenant,
        target=membership,
        changes={"user": user.get_username(), "role": membership.role},
    )
    return membership


def _role_rank(role: str) -> int:
    return {TenantRole.VIEWER: 0, TenantRole.MEMBER: 1, TenantRole.ADMIN: 2}[TenantRole(role)]


# --- Users --------------------------------------------------------------------------------


@transaction.atomic
def user_create(
    *, actor: Actor, username: str, password: str, email: str = "", platform_role: str = ""
) -> User:
    """Create a local account (sign-up through an invitation, operators, the demo seed)."""
    from django.contrib.auth.password_validation import validate_password

    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "This username is taken."})
    user = User(username=username, email=email, platform_role=platform_role)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from error
    user.set_password(password)
    user.full_clean(exclude=["password"])
    try:
        user.save()
    except IntegrityError as error:
        raise ValidationError({"username": "This username is taken."}) from error
    audit_record(
        actor=actor if actor.user else Actor(user=user, source_ip=actor.source_ip),
        action="create",
        tenant=None,
        target=user,
        changes={"username": username, "platform_role": platform_role},
    )
    return user


@transaction.atomic
def user_set_active(*, actor: Actor, user: User, active: bool) -> User:
    """Disable (or re-enable) an account without deleting its history; revokes its tokens."""
    if actor.user and actor.user.pk == user.pk and not active:
        raise ValidationError({"__all__": "You cannot disable your own account."})
    if user.is_active == active:
        return user
    was_platform_reader = user.sees_every_tenant  # as it stands while still active
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        user.api_tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        # Open sockets (live updates, consoles) re-check their user on this event.
        for tenant_id in user.memberships.values_list("tenant_id", flat=True):
            publish_tenant_event(tenant_id, ACCESS_CHANGED)
        if was_platform_reader:
            publish_platform_event(ACCESS_CHANGED)  # the operator console's live channel
    audit_record(
        actor=actor,
        action="enable" if active else "disable",
        tenant=None,
        target=user,
        changes={"is_active": [not active, active]},
    )
    return user


def drift_repair(*, actor: Actor) -> DriftReport:
    """What the watcher's periodic reconcile does, now: compare the portal with the management
    cluster and ask each owner's service to apply again what it lacks. Orphans are only
    reported. Raises ``ManagementClusterUnavailable`` without an answering cluster."""
    from butler_portal.watcher.drift import reconcile
    from butler_portal.watcher.registry import collect_drift_checks, handler_modules

    with management_client() as client:
        report = reconcile(client, collect_drift_checks(handler_modules()))
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="repair_drift",
            tenant=None,
            object_type="platform",
            object_repr="drift",
            changes={"applied_again": [missing.owner for missing in report.missing]},
        )
    return report


# --- API tokens ---------------------------------------------------------------------------

TOKEN_PREFIX = "bpt"


@transaction.atomic
def token_create(
    *, actor: Actor, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Issue a token for the acting user. Returns the row and the secret, shown once."""
    user = actor.user
    if user is None:
        raise ValidationError({"__all__": "Only a signed-in user can create tokens."})
    if actor.token is not None and not actor.token.allows_writes:
        raise ValidationError({"__all__": "A read-only token cannot create tokens."})
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": f"Choose one of: {', '.join(ApiToken.Scope.values)}."})
    if expires_at is not None:
        if expires_at <= timezone.now():
            raise ValidationError({"expires_at": "The expiry must be in the future."})
        latest = timezone.now() + timedelta(days=settings.API_TOKEN_MAX_LIFETIME_DAYS)
        if expires_at > latest:
            raise ValidationError(
                {"expires_at": f"Tokens live at most {settings.API_TOKEN_MAX_LIFETIME_DAYS} days."}
            )
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        user=user,
        name=name.strip(),
        prefix=prefix,
        digest=_digest(secret),
        scope=scope,
        expires_at=expires_at,
    )
    token.full_clean()
    token.save()
    audit_record(
        actor=actor,
        action="create",
        tenant=None,
        target=token,
        changes={
            "name": token.name,
            "scope": scope,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, secret


def token_authenticate(secret: str) -> ApiToken | None:
    """The usable token matching ``secret``, or None. Records when it was last used."""
    parts = secret.split("_", 2)  # the random part may itself contain "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.usable().select_related("user").filter(prefix=parts[1]).first()
    if token is None or not secrets.compare_digest(token.digest, _digest(secret)):
        return None
    now = timezone.now()
    # Write at most once a minute per token: every request must not become a write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    if token.revoked_at:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="revoke", tenant=None, target=token)
    return token

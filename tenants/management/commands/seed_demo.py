"""Seed the embedded demo: an operator, an auditor, two tenants with a user in each role.

Idempotent: existing users and tenants are left as they are, so it can run on every start.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tenants.access import PlatformRole, TenantRole
from tenants.audit import Actor
from tenants.catalogs import load_starting_entries
from tenants.models import LoadBalancerRange, Membership, Tenant, User
from tenants.services import membership_add, tenant_create, user_create

DEMO_PASSWORD = "butler-demo-2026"

DEMO_USERS: list[tuple[str, str]] = [
    ("operator", PlatformRole.OPERATOR),
    ("auditor", PlatformRole.AUDITOR),
    ("alice", ""),
    ("bob", ""),
    ("carol", ""),
    ("gina", ""),
    ("gus", ""),
]

DEMO_TENANTS: list[dict[str, Any]] = [
    {
        "slug": "acme",
        "name": "Acme Corp",
        "limits": {
            "clusters": 3,
            "worker_nodes": 12,
            "vms": 10,
            "vcpu": 64,
            "memory_mib": 131072,
            "storage_gib": 2000,
            "load_balancer_ips": 8,
        },
        "members": [
            ("alice", TenantRole.ADMIN),
            ("bob", TenantRole.MEMBER),
            ("carol", TenantRole.VIEWER),
        ],
    },
    {
        "slug": "globex",
        "name": "Globex Inc",
        "limits": {
            "clusters": 2,
            "worker_nodes": 6,
            "vms": 5,
            "vcpu": 32,
            "memory_mib": 65536,
            "storage_gib": 1000,
            "load_balancer_ips": 4,
        },
        "members": [("gina", TenantRole.ADMIN), ("gus", TenantRole.MEMBER)],
    },
]


class Command(BaseCommand):
    help = "Create demo users and tenants (embedded default only, unless --force)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Seed even with DEBUG off.")
        parser.add_argument(
            "--quiet-credentials", action="store_true", help="Do not print passwords."
        )

    def handle(
        self, *args: Any, force: bool = False, quiet_credentials: bool = False, **options: Any
    ) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to seed demo accounts with DEBUG off; pass --force if you mean it."
            )
        actor = Actor.system()
        with transaction.atomic():
            # Public addresses for the tenants' load balancers. TEST-NET-1 (RFC 5737): the
            # demo never routes to them, the simulator only hands them out.
            LoadBalancerRange.objects.get_or_create(
                name="demo-public",
                defaults={"first_address": "192.0.2.10", "last_address": "192.0.2.200"},
            )
            # The catalogs production starts from too (manage.py load_catalogs): Kubernetes
            # versions, instance types, add-ons, VM images and storage classes.
            load_starting_entries(actor)
            users = {username: self._user(actor, username, role) for username, role in DEMO_USERS}
            for spec in DEMO_TENANTS:
                tenant = Tenant.objects.filter(slug=spec["slug"]).first() or tenant_create(
                    actor=actor, slug=spec["slug"], name=spec["name"], limits=spec["limits"]
                )
                for username, role in spec["members"]:
                    if not Membership.objects.filter(tenant=tenant, user=users[username]).exists():
                        membership_add(actor=actor, tenant=tenant, user=users[username], role=role)
        if not quiet_credentials:
            self._print_credentials()

    def _user(self, actor: Actor, username: str, platform_role: str) -> User:
        existing = User.objects.filter(username=username).first()
        if existing:
            return existing
        return user_create(
            actor=actor,
            username=username,
            password=DEMO_PASSWORD,
            email=f"{username}@example.com",
            platform_role=platform_role,
        )

    def _print_credentials(self) -> None:
        roles = {username: role or "" for username, role in DEMO_USERS}
        for spec in DEMO_TENANTS:
            for username, role in spec["members"]:
                roles[username] = f"{role} of {spec['slug']}"
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (password for all: {DEMO_PASSWORD})"))
        for username, role in roles.items():
            self.stdout.write(f"  {username:<10} {role}")

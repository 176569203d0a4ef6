"""The permission declaration against the code and the API server: it covers every kind the
watcher follows and the portal applies, narrows what Kubernetes lets it narrow, and the
facts it rests on hold on a real kube-apiserver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import Forbidden
from butler_portal.kube.informer import WatchedKind
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.kube.permissions import (
    PORTAL_RULES,
    WATCHER_LEASE_NAME,
    Scope,
    allowed,
    main,
)
from butler_portal.kube.served import group_of
from butler_portal.watcher import LEASE_NAME
from butler_portal.watcher.registry import collect_drift_checks, collect_handlers, handler_modules
from tests.deploy.support import request_token, wait_until_allowed, write_token_kubeconfig

pytestmark = pytest.mark.k8s


def scope_of(watched: WatchedKind) -> Scope:
    if watched.namespace is None:
        return Scope.CLUSTER
    assert watched.namespace == settings.METALLB_NAMESPACE, watched
    return Scope.METALLB_NAMESPACE


def followed() -> list[WatchedKind]:
    return list(collect_handlers(handler_modules()))


def applied() -> list[WatchedKind]:
    """What the drift checks list: exactly the kinds the portal applies."""
    return [kind for check in collect_drift_checks(handler_modules()) for kind in check.kinds]


def test_the_lease_the_rules_name_is_the_watchers() -> None:
    assert WATCHER_LEASE_NAME == LEASE_NAME


def test_no_rule_uses_a_wildcard_and_each_says_why() -> None:
    for rule in PORTAL_RULES:
        assert "*" not in (rule.api_group, *rule.resources, *rule.verbs), rule
        assert len(rule.why) > 20, rule


def test_every_kind_the_watcher_follows_may_be_listed_and_watched_where_it_is(
    k8s: KubeClient,
) -> None:
    kinds = followed()
    assert len(kinds) >= 10  # tenants, clusters and VMs all contribute

    for watched in kinds:
        plural = k8s.resource(watched.api_version, watched.kind).plural
        for verb in ("list", "watch"):
            assert allowed(group_of(watched.api_version), plural, verb, scope_of(watched)), (
                f"{verb} {plural}: {watched}"
            )


def test_every_kind_the_portal_applies_may_be_created_patched_read_and_deleted(
    k8s: KubeClient,
) -> None:
    kinds = applied()
    assert {kind.kind for kind in kinds} >= {"Namespace", "Cluster", "VirtualMachine", "Secret"}

    for watched in kinds:
        plural = k8s.resource(watched.api_version, watched.kind).plural
        for verb in ("create", "patch", "get", "list", "delete"):
            assert allowed(group_of(watched.api_version), plural, verb, scope_of(watched)), (
                f"{verb} {plural}: {watched}"
            )


def test_the_lease_is_the_only_namespaced_right_of_the_portals_own_namespace() -> None:
    election = [rule for rule in PORTAL_RULES if rule.scope is Scope.RELEASE_NAMESPACE]

    assert {(rule.api_group, rule.resources) for rule in election} == {
        ("coordination.k8s.io", ("leases",))
    }
    # Reading and renewing are limited to the watcher's Lease; creating cannot be.
    by_name = [rule for rule in election if rule.resource_names]
    assert [(rule.resource_names, rule.verbs) for rule in by_name] == [
        ((LEASE_NAME,), ("get", "update"))
    ]
    assert not allowed("coordination.k8s.io", "leases", "get", Scope.CLUSTER)


def test_the_command_line_prints_the_rules_file(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.deploy.support import RULES_FILE

    assert main(["--helm-rules"]) == 0
    assert capsys.readouterr().out == RULES_FILE.read_text()
    assert main(["--explain"]) == 0
    assert "virtualmachineinstances/console" in capsys.readouterr().out


# --- What server-side apply needs, on the real API server ----------------------------------


@pytest.fixture
def configmap_writer(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str, tmp_path: Path
) -> Iterator[tuple[KubeClient, str]]:
    """A ServiceAccount that may patch (only) ConfigMaps in a namespace, and its client."""
    k8s.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "writer", "namespace": k8s_namespace},
        }
    )
    grant(k8s, k8s_namespace, ["get", "patch"])
    token = request_token(local_k8s, k8s_namespace, "writer")
    with KubeClient.from_kubeconfig(
        write_token_kubeconfig(local_k8s, token, tmp_path / "writer")
    ) as client:
        wait_until_allowed(lambda: client.get("v1", "ConfigMap", "settings", k8s_namespace))
        yield client, k8s_namespace


def grant(k8s: KubeClient, namespace: str, verbs: list[str]) -> None:
    k8s.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "writer", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}],
        }
    )
    k8s.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "writer", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
            "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": namespace}],
        }
    )


def config_map(namespace: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace},
        "data": {"value": value},
    }


def test_server_side_apply_of_a_new_object_needs_create_as_well_as_patch(
    configmap_writer: tuple[KubeClient, str], k8s: KubeClient
) -> None:
    client, namespace = configmap_writer

    with pytest.raises(Forbidden) as refused:
        client.apply(config_map(namespace, "first"))
    assert 'cannot create resource "configmaps"' in refused.value.message

    # Once it exists, patch alone converges it.
    k8s.apply(config_map(namespace, "first"), field_manager="someone")
    assert client.apply(config_map(namespace, "second"))["data"] == {"value": "second"}

    # And with create granted, a new object is applied through the same PATCH.
    grant(k8s, namespace, ["get", "patch", "create"])
    k8s.delete("v1", "ConfigMap", "settings", namespace)
    probe = {
        **config_map(namespace, "probe"),
        "metadata": {"name": "probe", "namespace": namespace},
    }
    wait_until_allowed(lambda: client.apply(probe, dry_run=True))
    assert client.apply(config_map(namespace, "third"))["data"] == {"value": "third"}

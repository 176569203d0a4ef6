"""The API server's refusals arrive as typed errors that carry what a user needs to know."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.errors import Conflict, Forbidden, Invalid, NotFound
from butler_portal.kube.localcp import LocalControlPlane

pytestmark = pytest.mark.k8s

TCP_API_VERSION = "kamaji.clastix.io/v1alpha1"


def subnet(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": {"name": name},
        "spec": {"protocol": "IPv4", "cidrBlock": "10.200.0.0/24", **spec},
    }


def tenant_control_plane(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": TCP_API_VERSION,
        "kind": "TenantControlPlane",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "controlPlane": {"service": {"serviceType": "LoadBalancer"}},
            "kubernetes": {"version": "v1.35.7", "kubelet": {"cgroupfs": "systemd"}},
            "networkProfile": {"port": 6443},
        },
    }


def config_map(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def causes_by_field(error: Invalid) -> dict[str, str]:
    return {cause.field: cause.message for cause in error.causes}


# --- Invalid -----------------------------------------------------------------------------------


def test_wrong_type_is_invalid_with_the_field_path(k8s: KubeClient) -> None:
    with pytest.raises(Invalid) as caught:
        k8s.create(subnet("wrong-type", enableDHCP="yes"))

    assert caught.value.status_code == 422
    causes = causes_by_field(caught.value)
    assert "must be of type boolean" in causes["spec.enableDHCP"]
    assert "spec.enableDHCP" in caught.value.summary


def test_wrong_type_in_an_apply_patch_is_invalid_not_a_server_error(k8s: KubeClient) -> None:
    # kube-apiserver answers 500 here (kubernetes/kubernetes#139253); it must not look transient.
    with pytest.raises(Invalid) as caught:
        k8s.apply(subnet("wrong-type-applied", enableDHCP="yes"))

    assert causes_by_field(caught.value) == {"spec.enableDHCP": "expected boolean, got &{yes}"}


def test_value_outside_the_enum_is_invalid(k8s: KubeClient, k8s_namespace: str) -> None:
    manifest = tenant_control_plane("bad-enum", k8s_namespace)
    manifest["spec"]["controlPlane"]["service"]["serviceType"] = "Bogus"

    with pytest.raises(Invalid) as caught:
        k8s.apply(manifest)

    causes = causes_by_field(caught.value)
    assert "Unsupported value" in causes["spec.controlPlane.service.serviceType"]
    assert "LoadBalancer" in causes["spec.controlPlane.service.serviceType"]


def test_missing_required_field_is_invalid(k8s: KubeClient, k8s_namespace: str) -> None:
    manifest = tenant_control_plane("no-version", k8s_namespace)
    del manifest["spec"]["kubernetes"]["version"]

    with pytest.raises(Invalid) as caught:
        k8s.apply(manifest)

    causes = causes_by_field(caught.value)
    assert causes["spec.kubernetes.version"] == "Required value"
    # The API adds a field-less note that CEL rules were skipped on the broken object.
    assert set(causes) <= {"spec.kubernetes.version", ""}


def test_cel_rule_violation_is_invalid_with_the_rule_message(
    k8s: KubeClient, k8s_namespace: str
) -> None:
    manifest = tenant_control_plane("bad-cidr", k8s_namespace)
    manifest["spec"]["networkProfile"]["podCidr"] = "not-a-cidr"

    with pytest.raises(Invalid) as caught:
        k8s.apply(manifest)

    causes = causes_by_field(caught.value)
    assert "podCidr must be empty or a valid CIDR" in causes["spec.networkProfile.podCidr"]


def test_cross_field_cel_rule_is_reported_on_the_spec(k8s: KubeClient, k8s_namespace: str) -> None:
    manifest = tenant_control_plane("lb-class-without-lb", k8s_namespace)
    manifest["spec"]["controlPlane"]["service"]["serviceType"] = "ClusterIP"
    manifest["spec"]["networkProfile"]["loadBalancerClass"] = "metallb"

    with pytest.raises(Invalid) as caught:
        k8s.apply(manifest)

    causes = causes_by_field(caught.value)
    assert "LoadBalancerClass is supported only with LoadBalancer service type" in causes["spec"]


def test_unknown_field_is_invalid(k8s: KubeClient) -> None:
    with pytest.raises(Invalid) as caught:
        k8s.apply(subnet("unknown-field", colour="blue"))

    assert causes_by_field(caught.value) == {"spec.colour": "field not declared in schema"}


def test_unknown_field_on_create_is_invalid(k8s: KubeClient) -> None:
    with pytest.raises(Invalid) as caught:
        k8s.create(subnet("unknown-field-created", colour="blue"))

    assert caught.value.status_code == 400
    assert causes_by_field(caught.value) == {"spec.colour": "unknown field"}


def test_duplicate_list_key_is_invalid(k8s: KubeClient, k8s_namespace: str) -> None:
    container = {"name": "app", "image": "example", "env": [{"name": "A"}, {"name": "A"}]}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "duplicate-env", "namespace": k8s_namespace},
        "spec": {"containers": [container]},
    }

    with pytest.raises(Invalid) as caught:
        k8s.apply(pod)

    assert "duplicate entries" in causes_by_field(caught.value)['spec.containers[name="app"].env']


def test_a_valid_object_with_the_same_helpers_applies(k8s: KubeClient, k8s_namespace: str) -> None:
    # Guards the negative tests above: they fail for the reason they name, not another one.
    k8s.apply(subnet("valid-subnet", enableDHCP=False))
    k8s.apply(tenant_control_plane("valid-tcp", k8s_namespace))


# --- NotFound ----------------------------------------------------------------------------------


def test_missing_object_is_not_found(k8s: KubeClient, k8s_namespace: str) -> None:
    with pytest.raises(NotFound) as caught:
        k8s.get("v1", "ConfigMap", "does-not-exist", k8s_namespace)

    assert caught.value.status_code == 404
    assert "does-not-exist" in caught.value.message


def test_unknown_kind_is_not_found(k8s: KubeClient) -> None:
    with pytest.raises(NotFound):
        k8s.get("kubeovn.io/v1", "NoSuchKind", "x")
    with pytest.raises(NotFound):
        k8s.get("nosuchgroup.example.com/v1", "Thing", "x")


def test_delete_is_idempotent_unless_asked_otherwise(k8s: KubeClient, k8s_namespace: str) -> None:
    k8s.apply(config_map("doomed", k8s_namespace))

    k8s.delete("v1", "ConfigMap", "doomed", k8s_namespace)
    k8s.delete("v1", "ConfigMap", "doomed", k8s_namespace)  # already gone: fine

    with pytest.raises(NotFound):
        k8s.delete("v1", "ConfigMap", "doomed", k8s_namespace, missing_ok=False)


# --- Conflict ----------------------------------------------------------------------------------


def test_update_with_a_stale_resource_version_conflicts(
    k8s: KubeClient, k8s_namespace: str
) -> None:
    k8s.apply(config_map("contended", k8s_namespace, owner="first"))
    stale = k8s.get("v1", "ConfigMap", "contended", k8s_namespace)
    fresh = copy.deepcopy(stale)

    fresh["data"]["owner"] = "second"
    k8s.replace(fresh)
    stale["data"]["owner"] = "third"
    with pytest.raises(Conflict) as caught:
        k8s.replace(stale)

    assert caught.value.status_code == 409
    assert caught.value.reason == "Conflict"
    assert k8s.get("v1", "ConfigMap", "contended", k8s_namespace)["data"]["owner"] == "second"


def test_creating_twice_conflicts_as_already_exists(k8s: KubeClient, k8s_namespace: str) -> None:
    k8s.create(config_map("twice", k8s_namespace))

    with pytest.raises(Conflict) as caught:
        k8s.create(config_map("twice", k8s_namespace))

    assert caught.value.reason == "AlreadyExists"


# --- Forbidden ---------------------------------------------------------------------------------


def test_unprivileged_user_is_forbidden(local_k8s: LocalControlPlane, k8s_namespace: str) -> None:
    with (
        local_k8s.client_for("mallory", groups=["tenant-nobody"]) as mallory,
        pytest.raises(Forbidden) as caught,
    ):
        mallory.list("v1", "ConfigMap", k8s_namespace)

    assert caught.value.status_code == 403
    assert "mallory" in caught.value.message


def test_least_privilege_identity_may_do_what_rbac_grants_and_nothing_more(
    local_k8s: LocalControlPlane, k8s: KubeClient, k8s_namespace: str
) -> None:
    k8s.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "configmap-reader", "namespace": k8s_namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        }
    )
    k8s.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "portal-reads-configmaps", "namespace": k8s_namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "portal"}
            ],
        }
    )
    k8s.apply(config_map("visible", k8s_namespace))

    with local_k8s.client_for("portal-reader", groups=["portal"]) as reader:
        items, _ = reader.list("v1", "ConfigMap", k8s_namespace)
        with pytest.raises(Forbidden):
            reader.apply(config_map("written", k8s_namespace))
        with pytest.raises(Forbidden):
            reader.list("v1", "ConfigMap", "default")

    assert "visible" in {item["metadata"]["name"] for item in items}

"""The Helm chart: it lints, renders what production needs, and every object it renders is
accepted by a real API server (server-side dry run, strict field validation)."""

from __future__ import annotations

from typing import Any

import pytest

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.errors import Invalid
from butler_portal.kube.permissions import (
    Scope,
    guarded_resource_rules,
    helm_rules_document,
    rules_in,
)
from butler_portal.kube.platform import prepare_local_platform
from tests.deploy.support import (
    CHART,
    PRODUCTION_VALUES,
    RULES_FILE,
    by_kind,
    helm,
    named,
    placed,
    render,
)

VALUES = {"default": (), "production": (PRODUCTION_VALUES,)}
COMPONENTS = ("web", "worker", "watcher")


def env_of(container: Manifest) -> dict[str, Any]:
    """Each variable's value, or its ``valueFrom`` when it comes from elsewhere."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def pod_specs(objects: list[Manifest]) -> dict[str, Manifest]:
    """The pod template of every Deployment and Job, by component."""
    return {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj["spec"]["template"]["spec"]
        for obj in objects
        if obj["kind"] in ("Deployment", "Job")
    }


def test_the_committed_rules_file_is_the_declarations_output() -> None:
    # Regenerate with: python -m butler_portal.kube.permissions --helm-rules > <the file>
    assert RULES_FILE.read_text() == helm_rules_document()


@pytest.mark.parametrize("values", VALUES)
def test_helm_lint_passes_strictly(values: str) -> None:
    arguments = ["lint", "--strict", str(CHART)]
    for path in VALUES[values]:
        arguments += ["--values", str(path)]

    linted = helm(*arguments)

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "[WARNING]" not in linted.stdout, linted.stdout
    assert "[ERROR]" not in linted.stdout, linted.stdout


def test_the_default_release_runs_every_process_from_one_image() -> None:
    objects = render("portal", "butler")

    pods = pod_specs(objects)
    assert set(pods) == {"web", "worker", "watcher", "migrate"}
    images = {c["image"] for spec in pods.values() for c in spec["containers"]}
    assert images == {"butler-portal:0.1.0"}  # the chart's appVersion
    commands = {name: spec["containers"][0]["command"] for name, spec in pods.items()}
    assert commands["web"][:2] == ["uvicorn", "butler_portal.asgi:application"]
    assert commands["worker"][:3] == ["celery", "--app=butler_portal", "worker"]
    assert commands["watcher"] == ["butler-portal", "watch"]
    assert commands["migrate"] == ["butler-portal", "migrate", "--noinput"]
    replicas = {
        o["metadata"]["name"]: o["spec"]["replicas"] for o in by_kind(objects, "Deployment")
    }
    assert replicas == {
        "portal-butler-portal-web": 3,
        "portal-butler-portal-worker": 2,
        "portal-butler-portal-watcher": 2,
    }


@pytest.mark.parametrize("values", VALUES)
def test_every_container_is_locked_down_with_scratch_space_and_requests(values: str) -> None:
    for component, spec in pod_specs(render(values=VALUES[values])).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, component
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert all("emptyDir" in volumes[name] for name in ("tmp", "var")), component
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, component
        assert context["allowPrivilegeEscalation"] is False, component
        assert context["capabilities"] == {"drop": ["ALL"]}, component
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        var_dir = env_of(container)["BUTLER_VAR_DIR"]
        assert mounts == {"/tmp": "tmp", var_dir: "var"}, component
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), component


@pytest.mark.parametrize("values", VALUES)
def test_configuration_and_credentials_reach_every_process(values: str) -> None:
    objects = render("portal", "butler", values=VALUES[values])
    secret = "butler-portal-credentials" if values == "production" else "butler-portal"

    for component, spec in pod_specs(objects).items():
        env = env_of(spec["containers"][0])
        for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            assert env[key] == {"secretKeyRef": {"name": secret, "key": key}}, component
        assert env["SECRET_KEY_FALLBACKS"]["secretKeyRef"]["optional"] is True
        assert env["KUBE_MODE"] == "in-cluster"
        assert env["DEBUG"] == "false"
        assert env["WATCHER_LEADER_ELECTION"] == "true"
        assert env["WATCHER_LEASE_NAMESPACE"] == "butler"  # the release's namespace
        # Only the web pools Postgres connections; Celery forks and must not.
        assert env["DB_POOL_SIZE"] == ("10" if component == "web" else "0"), component
        if values == "production":
            assert env["ALLOWED_HOSTS"] == "portal.example.com"
            assert env["CSRF_TRUSTED_ORIGINS"] == "https://portal.example.com"
            assert env["EMAIL_HOST"] == "smtp.example.com"  # extraEnv


def test_the_web_is_probed_served_and_reachable_through_the_ingress() -> None:
    objects = render("portal", "butler", values=[PRODUCTION_VALUES])

    web = pod_specs(objects)["web"]["containers"][0]
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = named(objects, "Service", "portal-butler-portal")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "web"
    ingress = named(objects, "Ingress", "portal-butler-portal")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {
        "name": "portal-butler-portal",
        "port": {"name": "http"},
    }
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    budgets = {o["metadata"]["name"]: o["spec"] for o in by_kind(objects, "PodDisruptionBudget")}
    assert set(budgets) == {f"portal-butler-portal-{c}" for c in COMPONENTS}


def test_migrations_run_as_a_hook_without_any_kubernetes_credentials() -> None:
    (job,) = by_kind(render(), "Job")

    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = job["spec"]["template"]["spec"]
    # Hooks run before the chart's ServiceAccount exists, and migrating needs no API access.
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec


def test_the_rbac_is_the_declaration_bound_to_the_charts_service_account() -> None:
    objects = render("portal", "butler")

    def rules(kind: str, name: str) -> list[Manifest]:
        found: list[Manifest] = named(objects, kind, name)["rules"]
        return found

    expected = {scope: [rule.policy_rule() for rule in rules_in(scope)] for scope in Scope}
    assert rules("ClusterRole", "portal-butler-portal") == expected[Scope.CLUSTER]
    metallb = named(objects, "Role", "portal-butler-portal-metallb")
    assert metallb["metadata"]["namespace"] == "metallb-system"
    assert metallb["rules"] == expected[Scope.METALLB_NAMESPACE]
    election = named(objects, "Role", "portal-butler-portal-leader-election")
    assert election["metadata"]["namespace"] == "butler"
    assert election["rules"] == expected[Scope.RELEASE_NAMESPACE]
    account = {"kind": "ServiceAccount", "name": "portal-butler-portal", "namespace": "butler"}
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for binding in by_kind(objects, kind):
            assert binding["subjects"] == [account], binding["metadata"]["name"]
    for pod in ("web", "worker", "watcher"):
        assert pod_specs(objects)[pod]["serviceAccountName"] == "portal-butler-portal"


def test_the_admission_policy_guards_the_declared_writes_of_the_portal_only() -> None:
    objects = render("portal", "butler")

    policy = named(objects, "ValidatingAdmissionPolicy", "portal-butler-portal-own-objects-only")
    assert policy["spec"]["matchConstraints"]["resourceRules"] == guarded_resource_rules()
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:butler:portal-butler-portal'"
    )
    binding = named(
        objects, "ValidatingAdmissionPolicyBinding", "portal-butler-portal-own-objects-only"
    )
    assert binding["spec"]["validationActions"] == ["Deny"]
    guarded = {r for rule in guarded_resource_rules() for r in rule["resources"]}
    assert {"namespaces", "secrets", "services", "clusters", "virtualmachines"} <= guarded
    assert not {"leases", "persistentvolumeclaims"} & guarded

    assert not by_kind(render(set_values=["guardrails.enabled=false"]), "ValidatingAdmissionPolicy")


@pytest.mark.parametrize(
    "assignment",
    [
        "existingSecret=",
        "web.replicas=-1",
        "logLevel=LOUD",
        "metallbNamespace=Not_A_Namespace",
        "ingress.hosts[0].paths[0].path=no-slash",
        "csrfTrustedOrigins[0]=portal.example.com",
        "surprise=1",
    ],
)
def test_the_schema_refuses_values_that_cannot_work(assignment: str) -> None:
    rendered = helm("template", "portal", str(CHART), "--set", assignment)

    assert rendered.returncode != 0
    assert "schema" in rendered.stderr.lower(), rendered.stderr


@pytest.mark.k8s
@pytest.mark.parametrize("values", VALUES)
def test_everything_rendered_is_accepted_by_the_api_server(
    values: str, k8s: KubeClient, k8s_namespace: str
) -> None:
    prepare_local_platform(k8s)  # MetalLB's namespace, where one Role goes
    objects = render(f"dry-{values}", k8s_namespace, values=VALUES[values])
    assert {o["kind"] for o in objects} >= {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Job",
        "Service",
        "PodDisruptionBudget",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }

    for obj in objects:
        # Strict field validation: an unknown or misplaced field is an error, not pruned.
        answer = k8s.apply(placed(obj, k8s_namespace), dry_run=True)
        assert answer["kind"] == obj["kind"]

    # A dry run stores nothing.
    assert k8s.list("apps/v1", "Deployment", k8s_namespace).items == []
    # And it has teeth: a misspelt field is refused, not pruned.
    deployment = placed(by_kind(objects, "Deployment")[0], k8s_namespace)
    misspelt = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(Invalid, match=r"spec\.replica"):
        k8s.apply(misspelt, dry_run=True)

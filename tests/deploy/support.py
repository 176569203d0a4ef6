"""What the deployment tests share: the pinned helm, the chart rendered, and the portal's
identity on the local API server (the chart's ServiceAccount with the chart's RBAC, a token
from the TokenRequest API, a kubeconfig that uses it).
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from butler_portal.kube.adapter import KubeClient, Manifest
from butler_portal.kube.binaries import ensure_helm
from butler_portal.kube.errors import Forbidden, NotFound, Unauthorized
from butler_portal.kube.localcp import LocalControlPlane

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "chart" / "butler-portal"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
RULES_FILE = CHART / "files" / "rbac-rules.yaml"

RBAC_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
# How long an RBAC change may take to reach the API server's authorizer (its informers).
RBAC_PROPAGATION_SECONDS = 10.0


HELM_HOME = Path(tempfile.gettempdir()) / "butler-portal-helm"
GUARDRAIL_KINDS = frozenset({"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"})
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", *GUARDRAIL_KINDS})
# How long a new admission policy may take to reach the API server's admission plug-in.
POLICY_PROPAGATION_SECONDS = 30.0
GUARD_MESSAGE = "the portal may only"


def helm(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm, with folders of its own: none of the machine's repositories,
    plugins or kube contexts (helm here only lints and renders, it talks to no cluster)."""
    environment = {
        "HOME": str(HELM_HOME),
        "HELM_CONFIG_HOME": str(HELM_HOME / "config"),
        "HELM_CACHE_HOME": str(HELM_HOME / "cache"),
        "HELM_DATA_HOME": str(HELM_HOME / "data"),
    }
    return subprocess.run(
        [str(ensure_helm()), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=environment,
    )


def placed(obj: Manifest, namespace: str) -> Manifest:
    """``obj`` with the release's namespace, as ``helm install`` places a namespaced object
    whose template names none."""
    if obj["kind"] not in CLUSTER_SCOPED:
        obj["metadata"].setdefault("namespace", namespace)
    return obj


def render(
    release: str = "butler-portal",
    namespace: str = "butler-portal",
    *,
    values: Sequence[Path] = (),
    set_values: Sequence[str] = (),
) -> list[Manifest]:
    """The chart's objects, as ``helm template`` renders them (hooks included)."""
    arguments = ["template", release, str(CHART), "--namespace", namespace]
    for path in values:
        arguments += ["--values", str(path)]
    for assignment in set_values:
        arguments += ["--set", assignment]
    rendered = helm(*arguments)
    assert rendered.returncode == 0, rendered.stderr
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]


def by_kind(objects: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: Sequence[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [obj for obj in by_kind(objects, kind) if obj["metadata"]["name"] == name]
    return found


def without_verb(
    rbac: Sequence[Manifest], api_group: str, resource: str, verb: str
) -> list[Manifest]:
    """The RBAC objects with one verb on one resource taken away (from every rule granting
    it; other resources of the same rule keep all their verbs)."""
    changed = 0
    result = []
    for obj in copy.deepcopy(list(rbac)):
        if obj["kind"] in ("ClusterRole", "Role"):
            rules = []
            for rule in obj.get("rules") or []:
                if (
                    api_group in rule["apiGroups"]
                    and resource in rule["resources"]
                    and verb in rule["verbs"]
                ):
                    changed += 1
                    others = [r for r in rule["resources"] if r != resource]
                    if others:
                        rules.append({**rule, "resources": others})
                    verbs = [v for v in rule["verbs"] if v != verb]
                    if verbs:
                        rules.append({**rule, "resources": [resource], "verbs": verbs})
                else:
                    rules.append(rule)
            obj["rules"] = rules
        result.append(obj)
    assert changed, f"the chart grants no {verb} on {resource}.{api_group}: nothing to take away"
    return result


@dataclass(frozen=True)
class PortalIdentity:
    """The chart's ServiceAccount on the local API server, and a client authenticated as it."""

    namespace: str  # the release's namespace (the watcher's Lease lives here)
    service_account: str
    kubeconfig: Path
    client: KubeClient

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def install_identity(
    admin: KubeClient,
    local_k8s: LocalControlPlane,
    work_dir: Path,
    *,
    take_away: tuple[str, str, str] | None = None,
) -> PortalIdentity:
    """Create a release namespace, the chart's ServiceAccount, RBAC (minus the ``take_away``
    (api group, resource, verb) if given) and admission policy, and a client that is that
    account; once the RBAC and the policy are in force."""
    release = f"bp-{uuid.uuid4().hex[:8]}"
    namespace = release
    objects = render(release, namespace)
    account = by_kind(objects, "ServiceAccount")[0]
    rbac = [obj for obj in objects if obj["kind"] in RBAC_KINDS]
    if take_away is not None:
        rbac = without_verb(rbac, *take_away)
    guardrails = [obj for obj in objects if obj["kind"] in GUARDRAIL_KINDS]
    assert len(guardrails) == 2, "the chart installs its admission policy by default"
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for obj in [account, *rbac, *guardrails]:
        admin.apply(placed(obj, namespace))
    name = account["metadata"]["name"]
    token = request_token(local_k8s, namespace, name)
    kubeconfig = write_token_kubeconfig(local_k8s, token, work_dir / f"kubeconfig-{release}")
    client = KubeClient.from_kubeconfig(kubeconfig)
    # Reading namespaces, or Kube-OVN's Vpcs when that is what was taken away.
    if take_away == ("", "namespaces", "list"):
        wait_until_allowed(lambda: client.list("kubeovn.io/v1", "Vpc"))
    else:
        wait_until_allowed(lambda: client.list("v1", "Namespace"))
    if take_away != ("", "secrets", "create"):
        wait_until_guarded(client, namespace)
    return PortalIdentity(namespace, name, kubeconfig, client)


def unlabelled_secret(namespace: str, name: str = "not-the-portals") -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"note": "someone else's"},
    }


def wait_until_guarded(client: KubeClient, namespace: str) -> Forbidden:
    """Until the admission policy refuses the portal a Secret that is not its own (a dry
    run: nothing is stored while the policy is still on its way); that refusal."""
    deadline = time.monotonic() + POLICY_PROPAGATION_SECONDS
    while True:
        try:
            client.apply(unlabelled_secret(namespace, "guard-probe"), dry_run=True)
        except Forbidden as refusal:
            if GUARD_MESSAGE in refusal.message:
                return refusal
            raise
        if time.monotonic() > deadline:
            raise AssertionError("the portal's admission policy did not take effect")
        time.sleep(0.2)


def _admin_credentials(local_k8s: LocalControlPlane) -> tuple[str, bytes, bytes]:
    """The admin kubeconfig's CA and client certificate (PEM)."""
    config = yaml.safe_load(local_k8s.kubeconfig_path.read_text())
    ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
    user = config["users"][0]["user"]
    return (
        ca,
        base64.b64decode(user["client-certificate-data"]),
        base64.b64decode(user["client-key-data"]),
    )


def request_token(
    local_k8s: LocalControlPlane, namespace: str, service_account: str, seconds: int = 3600
) -> str:
    """A token for the ServiceAccount from the TokenRequest API (as the kubelet gets one
    for a pod), asked for as admin over plain HTTPS on loopback."""
    ca, certificate, key = _admin_credentials(local_k8s)
    context = ssl.create_default_context(cadata=base64.b64decode(ca).decode())
    with tempfile.TemporaryDirectory() as folder:
        certificate_path, key_path = Path(folder) / "admin.crt", Path(folder) / "admin.key"
        certificate_path.write_bytes(certificate)
        key_path.write_bytes(key)
        context.load_cert_chain(certificate_path, key_path)
    connection = http.client.HTTPSConnection(
        "127.0.0.1", local_k8s.apiserver_port, context=context, timeout=10
    )
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": seconds},
    }
    try:
        connection.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            body=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 201, answer
    return str(answer["status"]["token"])


def write_token_kubeconfig(local_k8s: LocalControlPlane, token: str, path: Path) -> Path:
    ca, _, _ = _admin_credentials(local_k8s)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": local_k8s.server_url, "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": "portal", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "portal"}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def wait_until_allowed(probe: Callable[[], object]) -> None:
    """Until new RBAC reaches the authorizer (through its informers): retry ``probe``, a
    request the new rules allow, while it is refused (NotFound counts as allowed)."""
    deadline = time.monotonic() + RBAC_PROPAGATION_SECONDS
    while True:
        try:
            probe()
            return
        except NotFound:
            return
        except (Forbidden, Unauthorized) as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"the new RBAC did not take effect: {error}") from error
        time.sleep(0.1)


def forbidden_text(error: BaseException) -> str:
    assert isinstance(error, Forbidden), f"expected Forbidden, got {error!r}"
    return error.message

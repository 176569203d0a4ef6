"""Flux: ``HelmRepository`` artifacts and ``HelmRelease`` installs (STATUS.md §9).

A HelmRelease waits for its dependencies, its chart's HelmRepository and the kubeconfig
Secret it targets (``spec.kubeConfig.secretRef``, e.g. Kamaji's ``<tcp>-admin-kubeconfig``
key ``admin.svc``), reporting each missing prerequisite the way helm-controller v1.6 does;
then it is ``Reconciling`` for a step and ends ``Ready=True`` (``InstallSucceeded``, or
``UpgradeSucceeded`` after a spec change) or, with an injected failure, ``InstallFailed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from butler_portal.simulator.base import Controller
from butler_portal.simulator.objects import (
    Manifest,
    Ref,
    condition,
    dig,
    fingerprint,
    generation_of,
    is_true,
    merge_conditions,
    name_of,
    namespace_of,
    now,
)

SOURCE_API_VERSION = "source.toolkit.fluxcd.io/v1"
HELM_API_VERSION = "helm.toolkit.fluxcd.io/v2"
HELM_FINALIZER = "finalizers.fluxcd.io"
ARTIFACT_HOST = "http://source-controller.flux-system.svc.cluster.local."


def flux_conditions(obj: Manifest, desired: list[Manifest]) -> list[Manifest]:
    """Flux stamps each condition with the generation it describes."""
    generation = generation_of(obj)
    stamped = [{**entry, "observedGeneration": generation} for entry in desired]
    return merge_conditions(dig(obj, "status", "conditions"), stamped)


class HelmRepositoryController(Controller):
    """source-controller: index fetched, artifact stored."""

    api_version = SOURCE_API_VERSION
    kind = "HelmRepository"

    def reconcile(self, repository: Manifest) -> float | None:
        if dig(repository, "spec", "type") == "oci":
            self.api.write_status(repository, {})  # "static": status cleared, never Ready (§9)
            return None
        current = dig(repository, "status", "observedGeneration") == generation_of(repository)
        if not current and (wait := self.wait(repository, "fetching", "helm", fraction=0.2)):
            return wait
        status: Manifest = {"observedGeneration": generation_of(repository)}
        if failure := self.failure(repository):
            message = f"failed to fetch Helm repository index: {failure.text}"
            desired = [
                condition("FetchFailed", True, "Failed", message),
                condition("Ready", False, "Failed", message),
            ]
        else:
            artifact = self.artifact(repository)
            message = f"stored artifact: revision '{artifact['revision']}'"
            desired = [
                condition("ArtifactInStorage", True, "Succeeded", message),
                condition("Ready", True, "Succeeded", message),
            ]
            status |= {"artifact": artifact, "url": artifact["url"]}
        status["conditions"] = flux_conditions(repository, desired)
        self.api.write_status(repository, status)
        return None

    @staticmethod
    def artifact(repository: Manifest) -> Manifest:
        digest = fingerprint([dig(repository, "spec", "url"), generation_of(repository)], 64)
        path = (
            f"helmrepository/{namespace_of(repository)}/{name_of(repository)}/index-{digest}.yaml"
        )
        previous = dig(repository, "status", "artifact", default={})
        return {
            "revision": f"sha256:{digest}",
            "digest": f"sha256:{digest}",
            "path": path,
            "url": f"{ARTIFACT_HOST}/{path}",
            "size": 4096,
            "lastUpdateTime": previous.get("lastUpdateTime")
            if previous.get("path") == path
            else now(),
        }


class HelmReleaseController(Controller):
    """helm-controller: prerequisites, then install or upgrade."""

    api_version = HELM_API_VERSION
    kind = "HelmRelease"
    finalizer = HELM_FINALIZER
    finalize_step = "helm"
    wakes_on = (
        ("v1", "Secret"),
        (SOURCE_API_VERSION, "HelmRepository"),
        (HELM_API_VERSION, "HelmRelease"),
    )

    def reconcile(self, release: Manifest) -> float | None:
        if dig(release, "spec", "suspend"):
            return None
        generation = generation_of(release)
        status = dict(release.get("status") or {})
        if status.get("observedGeneration") == generation and (
            is_true(release, "Ready") or is_true(release, "Stalled")
        ):
            return None  # this generation is done (installed, or given up on)
        if blocker := self.blocker(release):
            reason, message = blocker
            self.write(
                release,
                status,
                [
                    condition(
                        "Reconciling", True, "ProgressingWithRetry", "Fulfilling prerequisites"
                    ),
                    condition("Ready", False, reason, message),
                ],
            )
            return None  # what it waits for wakes it (Secret, HelmRepository, dependency)
        action = "upgrade" if status.get("history") else "install"
        attempt = int(status.get(f"{action}Failures") or 0) + 1  # each retry takes its time
        if wait := self.wait(release, f"{action} {generation} #{attempt}", "helm"):
            running = f"Running '{action}' action with timeout of 5m0s"
            self.write(
                release,
                status,
                [
                    condition("Reconciling", True, "Progressing", running),
                    condition("Ready", None, "Progressing", running),
                ],
            )
            return wait
        return self.finish(release, status, action)

    def blocker(self, release: Manifest) -> tuple[str, str] | None:
        """The first unmet prerequisite, as (Ready reason, message), in helm-controller's order."""
        namespace = namespace_of(release)
        for dependency in dig(release, "spec", "dependsOn", default=[]):
            key = f"{dependency.get('namespace') or namespace}/{dependency['name']}"
            other = self.cache.find(
                HELM_API_VERSION, "HelmRelease", dependency["name"], key.split("/")[0]
            )
            if not (
                other
                and is_true(other, "Ready")
                and dig(other, "status", "observedGeneration") == generation_of(other)
            ):
                return "DependencyNotReady", f"dependency '{key}' is not ready"
        source = dig(release, "spec", "chart", "spec", "sourceRef", default={})
        if source.get("kind") == "HelmRepository":
            repository = self.cache.find(
                SOURCE_API_VERSION,
                "HelmRepository",
                source["name"],
                source.get("namespace") or namespace,
            )
            if repository is None:
                message = f"could not get Source object: HelmRepository '{source.get('namespace') or namespace}/{source['name']}' not found"
                return "ArtifactFailed", message
            if not is_true(repository, "Ready"):
                return "SourceNotReady", f"HelmChart '{helm_chart(release)}' is not ready"
        secret_ref = dig(release, "spec", "kubeConfig", "secretRef")
        if secret_ref:
            name, key = secret_ref["name"], secret_ref.get("key") or "value"
            secret = self.cache.find("v1", "Secret", name, namespace)
            if secret is None:
                return (
                    "RESTClientError",
                    f"could not get KubeConfig secret '{namespace}/{name}': secrets \"{name}\" not found",
                )
            if key not in (secret.get("data") or {}):
                return (
                    "RESTClientError",
                    f"KubeConfig secret '{namespace}/{name}' does not contain a '{key}' key with a kubeconfig",
                )
        return None

    def finish(self, release: Manifest, status: Manifest, action: str) -> float | None:
        chart = dig(release, "spec", "chart", "spec", "chart", default=name_of(release))
        version = chart_version(dig(release, "spec", "chart", "spec", "version", default="*"))
        history = list(status.get("history") or [])
        revision = int(history[0]["version"]) + 1 if history else 1
        target = f"{target_namespace(release)}/{release_name(release)}"
        verb = action.capitalize()
        config_digest = "sha256:" + fingerprint(dig(release, "spec", "values", default={}), 64)
        status |= {
            "helmChart": helm_chart(release),
            "storageNamespace": dig(
                release, "spec", "storageNamespace", default=namespace_of(release)
            ),
            "lastAttemptedGeneration": generation_of(release),
            "lastAttemptedRevision": version,
            "lastAttemptedReleaseAction": action,
            "lastAttemptedConfigDigest": config_digest,
        }
        if failure := self.failure(release):
            message = f"Helm {action} failed for release {target} with chart {chart}@{version}: {failure.text}"
            counter = f"{action}Failures"
            status[counter] = int(status.get(counter) or 0) + 1
            status["failures"] = int(status.get("failures") or 0) + 1
            retries = int(dig(release, "spec", action, "remediation", "retries", default=0))
            desired = [
                condition("Ready", False, f"{verb}Failed", message),
                condition("Released", False, f"{verb}Failed", message),
            ]
            if status[counter] > retries:
                attempts = f"Failed to {action} after {status[counter]} attempt(s)"
                desired.append(condition("Stalled", True, "RetriesExceeded", attempts))
                self.write(release, status, desired, done=True)
                return None
            self.write(release, status, desired)  # the write wakes it for the next attempt
            return None
        message = (
            f"Helm {action} succeeded for release {target}.v{revision} with chart {chart}@{version}"
        )
        stamp = now()
        status["history"] = [
            {
                "name": release_name(release),
                "namespace": target_namespace(release),
                "version": revision,
                "status": "deployed",
                "chartName": chart,
                "chartVersion": version,
                "appVersion": version,
                "configDigest": config_digest,
                "digest": "sha256:" + fingerprint([target, revision, version], 64),
                "firstDeployed": history[-1]["firstDeployed"] if history else stamp,
                "lastDeployed": stamp,
            },
            *history[:4],
        ]
        for counter in ("failures", "installFailures", "upgradeFailures"):
            status.pop(counter, None)
        self.write(
            release,
            status,
            [
                condition("Ready", True, f"{verb}Succeeded", message),
                condition("Released", True, f"{verb}Succeeded", message),
            ],
            done=True,
        )
        return None

    def write(
        self, release: Manifest, status: Manifest, desired: list[Manifest], *, done: bool = False
    ) -> None:
        """Conditions replace the previous ones (Reconciling leaves when done)."""
        if done:
            status["observedGeneration"] = generation_of(release)
        status["conditions"] = flux_conditions(release, desired)
        self.api.write_status(release, status)

    def wake(self, obj: Manifest) -> Iterable[Ref]:
        namespace = namespace_of(obj)
        for release in self.runtime.store.list(HELM_API_VERSION, "HelmRelease"):
            spec = release.get("spec") or {}
            source = dig(spec, "chart", "spec", "sourceRef", default={})
            waits_for = {
                "Secret": namespace_of(release) == namespace
                and dig(spec, "kubeConfig", "secretRef", "name") == name_of(obj),
                "HelmRepository": source.get("name") == name_of(obj)
                and (source.get("namespace") or namespace_of(release)) == namespace,
                "HelmRelease": any(
                    each["name"] == name_of(obj)
                    and (each.get("namespace") or namespace_of(release)) == namespace
                    for each in spec.get("dependsOn") or ()
                ),
            }
            if waits_for.get(obj["kind"]):
                yield Ref.of(release)


def release_name(release: Manifest) -> str:
    spec = release.get("spec") or {}
    if name := spec.get("releaseName"):
        return str(name)
    prefix = f"{spec['targetNamespace']}-" if spec.get("targetNamespace") else ""
    return prefix + name_of(release)


def target_namespace(release: Manifest) -> str:
    return str(dig(release, "spec", "targetNamespace", default=namespace_of(release)))


def helm_chart(release: Manifest) -> str:
    """§9: the generated HelmChart, ``<source-namespace>/<hr-namespace>-<hr-name>``."""
    source_namespace = dig(
        release, "spec", "chart", "spec", "sourceRef", "namespace", default=namespace_of(release)
    )
    return f"{source_namespace}/{namespace_of(release)}-{name_of(release)}"


def chart_version(constraint: str) -> str:
    """A concrete version satisfying a simple constraint: ``1.17.x`` → ``1.17.0``."""
    match = re.search(r"\d+(?:\.(?:\d+|x|X|\*))*", constraint)
    if not match:
        return "1.0.0"
    parts = [part if part.isdigit() else "0" for part in match.group().split(".")]
    return ".".join([*parts, "0", "0"][:3])

"""Find, download or build the `kube-apiserver` and `etcd` binaries of the local control plane,
and the `helm` binary that checks and renders the deployment chart (``deploy/``).

Resolution order for `kube-apiserver` and `etcd` (first hit wins):

1. the folder named by ``KUBEBUILDER_ASSETS`` (the envtest convention);
2. the per-user cache: ``$BUTLER_K8S_CACHE`` or ``~/.cache/butler-portal/k8s``, one folder per
   ``<component>-<version>``;
3. the official release download, checksum-verified, with a short timeout (machines that reach
   only package registries fail here fast and fall through);
4. a build from the Go module proxy, through a throwaway wrapper module (see ``_build_*``).

Steps 3 and 4 write into the cache, under a file lock, so concurrent processes (pytest-xdist
workers, the portal and its tests) build once and reuse the result.

`helm` comes from the cache or a build from the Go module proxy only: the chart's checks must
run the pinned version, not whichever one a machine happens to have installed.

Command line (``scripts/test.sh`` builds helm before the tests need it):

    python -m butler_portal.kube.binaries helm

No Django imports here: this module also runs from the command line and from CI.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# kube-apiserver is independent of the tenant Kubernetes versions Kamaji runs: it only serves the
# CRDs. v1.35.4 builds with Go 1.26 from the module proxy.
KUBE_APISERVER_VERSION = "v1.35.4"
# etcd v3.6 is the release line Kubernetes 1.35 is tested against.
ETCD_VERSION = "v3.6.16"

# Helm 4: Helm 3 has had no bug fixes since September 2026 and its security fixes end in
# February 2027. The chart stays `apiVersion: v2`, which Helm 3 installs as well, so operators
# not yet on Helm 4 are not locked out; the checks run the supported major.
HELM_VERSION = "v4.3.2"

DOWNLOAD_TIMEOUT_SECONDS = 5.0

KUBE_APISERVER = "kube-apiserver"
ETCD = "etcd"
HELM = "helm"
# The components with an official download tried before building (helm is only built).
DOWNLOADABLE = frozenset({KUBE_APISERVER, ETCD})
# KUBEBUILDER_ASSETS holds envtest's binaries: kube-apiserver and etcd, never helm.
ENVTEST_ASSETS = frozenset({KUBE_APISERVER, ETCD})


class BinaryUnavailable(RuntimeError):
    """No source produced a usable binary."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path


def cache_root() -> Path:
    if override := os.environ.get("BUTLER_K8S_CACHE"):
        return Path(override).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg_cache) / "butler-portal" / "k8s"


def cached_binary_path(component: str, version: str) -> Path:
    return cache_root() / f"{component}-{version}" / component


def ensure_binaries() -> Binaries:
    """Return usable binaries, downloading or building the missing ones into the cache."""
    return Binaries(
        kube_apiserver=ensure_binary(KUBE_APISERVER, KUBE_APISERVER_VERSION),
        etcd=ensure_binary(ETCD, ETCD_VERSION),
    )


def ensure_helm() -> Path:
    """The pinned helm binary, built from the Go module proxy into the cache the first time."""
    return ensure_binary(HELM, HELM_VERSION)


def binaries_cached() -> bool:
    """Whether the control plane's binaries are at hand (no build ahead)."""
    if os.environ.get("KUBEBUILDER_ASSETS"):
        return True
    return all(
        _is_executable(cached_binary_path(component, version))
        for component, version in ((KUBE_APISERVER, KUBE_APISERVER_VERSION), (ETCD, ETCD_VERSION))
    )


def ensure_binary(component: str, version: str) -> Path:
    if component in ENVTEST_ASSETS and (assets := os.environ.get("KUBEBUILDER_ASSETS")):
        candidate = Path(assets) / component
        if _is_executable(candidate):
            logger.info("%s: using KUBEBUILDER_ASSETS (%s)", component, candidate)
            return candidate
        logger.info("%s: not in KUBEBUILDER_ASSETS=%s, looking further", component, assets)

    target = cached_binary_path(component, version)
    if _is_executable(target):
        return target

    with _exclusive_lock(target.parent.parent / f"{target.parent.name}.lock"):
        # Another process may have produced it while we waited for the lock.
        if _is_executable(target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if component not in DOWNLOADABLE:
            _build(component, version, target)
        else:
            try:
                _download(component, version, target)
            except Exception as error:  # any failure (offline, 404, bad checksum): build it
                logger.info(
                    "%s %s: no download (%s); building from source", component, version, error
                )
                _build(component, version, target)
        logger.info(
            "%s %s ready in %.0fs: %s", component, version, time.monotonic() - started, target
        )
    return target


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process holding %s", lock_path)
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _install_atomically(content_source: Path | bytes, target: Path) -> None:
    """Write the binary next to its target and rename, so a reader never sees half a file."""
    partial = target.with_name(f".{target.name}.partial")
    if isinstance(content_source, bytes):
        partial.write_bytes(content_source)
    else:
        shutil.copyfile(content_source, partial)
    partial.chmod(0o755)
    partial.replace(target)


# --- Official releases ---------------------------------------------------------------------


def _go_platform() -> tuple[str, str]:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return platform.system().lower(), arch


def _fetch(url: str) -> bytes:
    logger.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        data: bytes = response.read()
    return data


def _verify_sha256(data: bytes, expected_hex: str, what: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_hex.lower():
        raise BinaryUnavailable(f"checksum mismatch for {what}: {actual} != {expected_hex}")


def _download(component: str, version: str, target: Path) -> None:
    goos, goarch = _go_platform()
    if component == KUBE_APISERVER:
        url = f"https://dl.k8s.io/release/{version}/bin/{goos}/{goarch}/kube-apiserver"
        expected = _fetch(f"{url}.sha256").decode().split()[0]
        binary = _fetch(url)
        _verify_sha256(binary, expected, url)
    elif component == ETCD:
        archive_name = f"etcd-{version}-{goos}-{goarch}.tar.gz"
        base = f"https://github.com/etcd-io/etcd/releases/download/{version}"
        sums = _fetch(f"{base}/SHA256SUMS").decode()
        expected = next(
            (line.split()[0] for line in sums.splitlines() if line.endswith(archive_name)), ""
        )
        if not expected:
            raise BinaryUnavailable(f"{archive_name} is not listed in SHA256SUMS")
        archive = _fetch(f"{base}/{archive_name}")
        _verify_sha256(archive, expected, archive_name)
        binary = _extract_member(archive, f"{archive_name.removesuffix('.tar.gz')}/etcd")
    else:
        raise BinaryUnavailable(f"unknown component {component}")
    _install_atomically(binary, target)


def _extract_member(tar_gz: bytes, member: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as archive:
        extracted = archive.extractfile(member)
        if extracted is None:
            raise BinaryUnavailable(f"{member} missing from the archive")
        return extracted.read()


# --- Build from the Go module proxy --------------------------------------------------------


def _build(component: str, version: str, target: Path) -> None:
    if shutil.which("go") is None:
        raise BinaryUnavailable(f"cannot build {component}: no `go` toolchain on PATH")
    with tempfile.TemporaryDirectory(prefix=f"butler-build-{component}-") as wrapper_dir:
        wrapper = Path(wrapper_dir)
        output = wrapper / component
        if component == KUBE_APISERVER:
            _build_kube_apiserver(version, wrapper, output)
        elif component == ETCD:
            _build_etcd(version, wrapper, output)
        elif component == HELM:
            _build_helm(version, wrapper, output)
        else:
            raise BinaryUnavailable(f"unknown component {component}")
        _install_atomically(output, target)


def _build_kube_apiserver(version: str, wrapper: Path, output: Path) -> None:
    """Build kube-apiserver through a wrapper module.

    k8s.io/kubernetes cannot be `go install`ed: its go.mod requires the staging modules
    (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 with replace lines pointing into its own
    tree, and replace lines of a dependency are ignored. The wrapper module re-creates those
    replacements with the published v0.X.Y tag of each staging module.
    """
    staging_version = "v0" + version.removeprefix("v1")  # v1.35.4 -> v0.35.4
    staging_modules = _kubernetes_staging_modules(version, wrapper)
    replaces = "\n".join(f"\t{module} => {module} {staging_version}" for module in staging_modules)
    _write_wrapper(
        wrapper,
        module="butler.local/kube-apiserver-build",
        requirement=f"k8s.io/kubernetes {version}",
        main_package="k8s.io/kubernetes/cmd/kube-apiserver",
        extra=f"replace (\n{replaces}\n)\n",
    )
    _go_build(
        wrapper,
        "k8s.io/kubernetes/cmd/kube-apiserver",
        output,
        ldflags=f"-X k8s.io/component-base/version.gitVersion={version}",
    )


def _kubernetes_staging_modules(version: str, work_dir: Path) -> list[str]:
    logger.info(
        "kube-apiserver %s: reading the staging modules from k8s.io/kubernetes go.mod", version
    )
    described = _run_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], work_dir)
    go_mod = Path(json.loads(described)["GoMod"]).read_text()
    modules = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", go_mod, re.MULTILINE)
    if not modules:
        raise BinaryUnavailable(f"no staging replace lines in k8s.io/kubernetes@{version} go.mod")
    return sorted(set(modules))


def _build_etcd(version: str, wrapper: Path, output: Path) -> None:
    """etcd's server module has a main package at its root but local replace lines for its
    sibling modules; as a dependency those are ignored and the tagged siblings are used."""
    _write_wrapper(
        wrapper,
        module="butler.local/etcd-build",
        requirement=f"go.etcd.io/etcd/server/v3 {version}",
        main_package="go.etcd.io/etcd/server/v3",
        extra="",
    )
    _go_build(wrapper, "go.etcd.io/etcd/server/v3", output, ldflags="")


def _build_helm(version: str, wrapper: Path, output: Path) -> None:
    """helm's module has no replace lines, so the wrapper only pins it; the version is
    stamped the way helm's own Makefile does (`helm version` reports it)."""
    major = version.split(".")[0]  # v4.3.2 -> v4, the module path's major suffix
    module = f"helm.sh/helm/{major}"
    _write_wrapper(
        wrapper,
        module="butler.local/helm-build",
        requirement=f"{module} {version}",
        main_package=f"{module}/cmd/helm",
        extra="",
        go_version="1.26.0",  # what helm v4.3 requires (the toolchain must be at least that)
    )
    _go_build(
        wrapper,
        f"{module}/cmd/helm",
        output,
        ldflags=f"-s -w -X {module}/internal/version.version={version}",
    )


def _write_wrapper(
    wrapper: Path,
    *,
    module: str,
    requirement: str,
    main_package: str,
    extra: str,
    go_version: str = "1.25",
) -> None:
    # The blank import of the main package (the classic tools.go pattern) makes `go mod tidy`
    # record every module the build needs, with checksums.
    go_mod = f"module {module}\n\ngo {go_version}\n\nrequire {requirement}\n\n{extra}"
    (wrapper / "go.mod").write_text(go_mod)
    (wrapper / "tools.go").write_text(
        f'//go:build tools\n\npackage tools\n\nimport _ "{main_package}"\n'
    )


def _go_build(wrapper: Path, package: str, output: Path, *, ldflags: str) -> None:
    name = output.name
    with _heartbeat(f"{name}: resolving modules (first time: downloads ~0.5-1 GB)"):
        _run_go(["mod", "tidy"], wrapper)
    with _heartbeat(f"{name}: compiling {package} (first time: several minutes on 2 cores)"):
        _run_go(["build", "-o", str(output), "-ldflags", ldflags, package], wrapper)


@contextlib.contextmanager
def _heartbeat(stage: str, every_seconds: float = 20.0) -> Iterator[None]:
    """Say what is happening, then keep saying it is still happening: a silent
    several-minute build looks exactly like a hung one."""
    logger.info("%s", stage)
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every_seconds):
            logger.info("  ... still working (%ds)", time.monotonic() - started)

    thread = threading.Thread(target=beat, name="build-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        logger.info("  done in %ds", time.monotonic() - started)


def _run_go(arguments: list[str], work_dir: Path) -> str:
    environment = {
        **os.environ,
        "CGO_ENABLED": "0",  # static binaries; the generated code is committed upstream
        "GOWORK": "off",  # never pick up a go.work from a parent folder
        "GOFLAGS": "-mod=mod -buildvcs=false",
    }
    go = shutil.which("go") or "go"
    completed = subprocess.run(  # noqa: S603 (fixed program, arguments built here)
        [go, *arguments],
        cwd=work_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BinaryUnavailable(
            f"`go {' '.join(arguments)}` failed ({completed.returncode}):\n"
            f"{completed.stderr[-4000:]}"
        )
    return completed.stdout


# --- Command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m butler_portal.kube.binaries")
    parser.add_argument(
        "component", choices=[HELM], help="the binary to find or build (its path is printed)"
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        print(ensure_helm())
    except BinaryUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

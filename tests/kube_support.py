"""Pointing the portal at a real API server (``portal_k8s`` does it for the session's one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pytest_django.fixtures import Settings as SettingsWrapper

from butler_portal.kube import forget_clients, kube_client
from butler_portal.kube.adapter import KubeClient
from butler_portal.kube.localcp import LocalControlPlane
from butler_portal.kube.platform import prepare_local_platform


@contextmanager
def portal_pointed_at(
    control_plane: LocalControlPlane, settings: SettingsWrapper
) -> Iterator[KubeClient]:
    """Point the portal (services, tasks) at ``control_plane`` for the ``with`` block."""
    settings.KUBE_MODE = "kubeconfig"
    settings.KUBECONFIG = str(control_plane.kubeconfig_path)
    forget_clients()
    try:
        client = kube_client()
        assert client is not None
        prepare_local_platform(client)
        yield client
    finally:
        forget_clients()

"""The one package that talks to Kubernetes.

Everything else calls ``kube_client()`` and the typed ``KubeClient`` methods it returns, and
catches the errors in ``butler_portal.kube.errors``.

Where the client points is one setting, ``KUBE_MODE``:
- ``embedded``: the local control plane that ``manage.py serve`` starts (kubeconfig in var/);
- ``kubeconfig``: the file in ``KUBECONFIG``;
- ``in-cluster``: the pod's service account (production);
- ``off``: no Kubernetes at all; provisioning records that nothing is configured.
"""

from __future__ import annotations

import threading

from django.conf import settings

from butler_portal.kube.adapter import KubeClient

_lock = threading.Lock()
_clients: dict[tuple[str, str], KubeClient] = {}


def kube_client() -> KubeClient | None:
    """The shared client for the configured cluster, or None when Kubernetes is off."""
    mode, kubeconfig = settings.KUBE_MODE, str(settings.KUBECONFIG or "")
    if mode == "off":
        return None
    key = (mode, kubeconfig)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if mode == "in-cluster":
                client = KubeClient.in_cluster()
            elif kubeconfig:
                client = KubeClient.from_kubeconfig(kubeconfig)
            else:
                raise RuntimeError(f"KUBE_MODE={mode} needs KUBECONFIG to name a kubeconfig file")
            _clients[key] = client
        return client


def forget_clients() -> None:
    """Drop cached clients (tests switch clusters; a rotated kubeconfig must be re-read)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()

"""The watcher: follows Kubernetes status into the portal (``manage.py watch``, or in-process).

See ``watcher.py`` for the process, ``drift.py`` for the periodic reconcile and
``butler_portal/kube/lease.py`` for leader election.
"""

from butler_portal.watcher.drift import DriftCheck, DriftReport, Expectation, ObjectRef
from butler_portal.watcher.watcher import LEASE_NAME, Watcher

__all__ = ["LEASE_NAME", "DriftCheck", "DriftReport", "Expectation", "ObjectRef", "Watcher"]

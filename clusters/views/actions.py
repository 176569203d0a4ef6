"""Day-2 actions on a cluster, for tenant members and admins.

Each is a ``ConfirmActionView``: GET asks (a dialog over the detail page, or a page of its
own without JavaScript), POST calls the service, whose refusals show in the dialog on the
field to change. Viewers get 403, other tenants' clusters 404 (``ClusterView``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.utils.functional import cached_property

from clusters.forms import ScaleForm, UpgradeForm
from clusters.models import Cluster
from clusters.selectors import cluster_quota_preview, upgrade_targets
from clusters.services import (
    cluster_delete,
    cluster_hibernate,
    cluster_retry,
    cluster_scale,
    cluster_set_protection,
    cluster_upgrade,
    cluster_wake,
)
from clusters.spec import ClusterSpec
from clusters.views.display import PreviewView, preview_view
from clusters.views.pages import ClusterView
from tenants.views.base import Confirmation, htmx_target
from tenants.views.objects import ObjectActionView, ObjectDeleteView

SCALE_PREVIEW = "scale-preview"


class ClusterActionView(ClusterView, ObjectActionView[Cluster]):
    """A dialog acting on one cluster of the tenant in the URL."""


class ClusterHibernateView(ClusterActionView):
    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Hibernate {self.cluster.name}?",
            message=(
                "The control plane scales to zero and the workers shut down: everything "
                "running in the cluster stops until you wake it up. Its quota stays reserved, "
                "so waking up always fits."
            ),
            button="Hibernate",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        cluster_hibernate(actor=self.actor, cluster=self.cluster)
        messages.success(self.request, f"{self.cluster.name} is going to sleep.")
        return self.detail_url()


class ClusterWakeView(ClusterActionView):
    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Wake {self.cluster.name} up?",
            message="The control plane starts again, then the workers boot and rejoin.",
            button="Wake up",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        cluster_wake(actor=self.actor, cluster=self.cluster)
        messages.success(self.request, f"{self.cluster.name} is waking up.")
        return self.detail_url()


class ClusterRetryView(ClusterActionView):
    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Retry {self.cluster.name}?",
            message=(
                "The portal applies the cluster to Kubernetes again. Its quota is reserved "
                "again, so it has to fit."
            ),
            button="Retry",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        cluster_retry(actor=self.actor, cluster=self.cluster)
        messages.success(self.request, f"{self.cluster.name} is being provisioned again.")
        return self.detail_url()


class ClusterProtectionView(ClusterActionView):
    """Turn deletion protection on or off; ``enabled`` comes from the URL conf."""

    enabled: ClassVar[bool] = True

    def confirmation(self) -> Confirmation:
        name = self.cluster.name
        if self.enabled:
            return Confirmation(
                title=f"Protect {name} from deletion?",
                message=f"Nobody can delete {name} until protection is turned off again.",
                button="Turn protection on",
                cancel_url=self.detail_url(),
                danger=False,
            )
        return Confirmation(
            title=f"Turn off deletion protection of {name}?",
            message=(
                f"Anyone who may change clusters in {self.tenant.name} can then delete {name} "
                "(after typing its name)."
            ),
            button="Turn protection off",
            cancel_url=self.detail_url(),
        )

    def perform(self) -> str:
        cluster_set_protection(actor=self.actor, cluster=self.cluster, enabled=self.enabled)
        state = "on" if self.enabled else "off"
        messages.success(self.request, f"Deletion protection of {self.cluster.name} is {state}.")
        return self.detail_url()


class ClusterDeleteView(ClusterActionView, ObjectDeleteView[Cluster]):
    def confirmation(self) -> Confirmation:
        return Confirmation(
            title=f"Delete {self.cluster.name}?",
            message=(
                "Its workers, control plane, add-ons and everything running in it are deleted "
                "for good. The quota comes back once Kubernetes has removed it all."
            ),
            button="Delete cluster",
            cancel_url=self.detail_url(),
        )

    def delete(self, confirm_name: str) -> bool:
        return cluster_delete(actor=self.actor, cluster=self.cluster, confirm_name=confirm_name)


class ClusterUpgradeView(ClusterActionView):
    @cached_property
    def targets(self) -> list[Any]:
        return upgrade_targets(self.cluster)

    @cached_property
    def form(self) -> UpgradeForm:
        return UpgradeForm(self.submitted_data(), targets=self.targets)

    def get_form(self) -> forms.Form:
        return self.form

    def confirmation(self) -> Confirmation:
        current = self.cluster.version.version
        if not self.targets:
            message = f"The catalog offers no version {current} may upgrade to yet."
        else:
            message = (
                f"From {current}, one step at a time. The control plane moves first; then the "
                "workers are replaced one by one, so workloads move to the new ones."
            )
        return Confirmation(
            title=f"Upgrade {self.cluster.name}?",
            message=message,
            button="Upgrade",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def perform(self) -> str:
        version = self.form.cleaned_data["version"]
        cluster_upgrade(actor=self.actor, cluster=self.cluster, version=version)
        messages.success(self.request, f"{self.cluster.name} is upgrading to {version.version}.")
        return self.detail_url()


class ClusterScaleView(ClusterActionView):
    """The dialog's worker count asks for its quota preview as it changes (GET aimed at
    ``#scale-preview``): only what the new workers add counts."""

    template_name = "clusters/scale_page.html"
    partial_templates = {
        "modal-body": "clusters/_scale_dialog.html",
        SCALE_PREVIEW: "clusters/_scale_preview.html",
    }

    @cached_property
    def form(self) -> ScaleForm:
        if htmx_target(self.request) == SCALE_PREVIEW:
            return ScaleForm(self.request.GET)
        form = ScaleForm(self.submitted_data(), initial={"worker_count": self.cluster.worker_count})
        # The count asks this view for its preview (GET: only the number travels).
        form.fields["worker_count"].widget.attrs.update(
            {
                "hx-get": self.request.path,
                "hx-trigger": "input delay:300ms",
                "hx-target": f"#{SCALE_PREVIEW}",
                "hx-swap": "innerHTML",
                # Queued on the form, as the create forms' previews are: replacing a preview
                # on its way aborts it (an error in the console), and the submission waits
                # for the one out.
                "hx-sync": "closest form:queue last",
            }
        )
        return form

    def get_form(self) -> forms.Form:
        return self.form

    def confirmation(self) -> Confirmation:
        cluster = self.cluster
        return Confirmation(
            title=f"Scale {cluster.name}",
            message=(
                f"{cluster.worker_count} worker{'s' if cluster.worker_count != 1 else ''} of "
                f"{cluster.instance_type.name} now. New workers get the same size and a "
                f"{cluster.worker_disk_gib} GiB disk; removed ones are drained first."
            ),
            button="Scale",
            cancel_url=self.detail_url(),
            danger=False,
        )

    def requested_workers(self) -> int | None:
        """The count as typed (valid in shape), even when the service refused it."""
        form = self.form
        if not form.is_bound:
            return self.cluster.worker_count
        try:
            workers: int = form.fields["worker_count"].clean(form["worker_count"].data)
        except ValidationError:
            return None
        return workers

    def preview(self) -> PreviewView | None:
        workers = self.requested_workers()
        if workers is None:
            return None
        cluster = self.cluster
        spec = ClusterSpec(
            name=cluster.name,
            version=cluster.version,
            instance_type=cluster.instance_type,
            worker_count=workers,
            control_plane_replicas=cluster.control_plane_replicas,
            worker_disk_gib=cluster.worker_disk_gib,
        )
        preview = cluster_quota_preview(self.tenant, spec, cluster=cluster)
        return preview_view(preview, spec, only_added=True)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            preview=self.preview(),
            requested_workers=self.requested_workers(),
        )
        return context

    def perform(self) -> str:
        workers = self.form.cleaned_data["worker_count"]
        cluster_scale(actor=self.actor, cluster=self.cluster, worker_count=workers)
        messages.success(self.request, f"{self.cluster.name} is scaling to {workers} workers.")
        return self.detail_url()

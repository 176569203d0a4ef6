"""The VM pages of the browser portal (the REST API is in ``vms/api/urls.py``), and the
signed-in user's SSH keys."""

from django.urls import path

from vms.views import actions, console, pages, sshkeys

urlpatterns = [
    path("t/<slug:slug>/vms/", pages.VMListView.as_view(), name="vm-list"),
    path("t/<slug:slug>/vms/new/", pages.VMCreateView.as_view(), name="vm-create"),
    path("t/<slug:slug>/vms/summary/", pages.VMSummaryView.as_view(), name="vm-summary"),
    path("t/<slug:slug>/vms/power/", actions.VMBulkPowerView.as_view(), name="vm-bulk-power"),
    path("t/<slug:slug>/vms/<int:pk>/", pages.VMDetailView.as_view(), name="vm-detail"),
    *[
        path(
            f"t/<slug:slug>/vms/<int:pk>/{power}/",
            actions.VMPowerView.as_view(power=power),
            name=f"vm-{power}",
        )
        for power in ("start", "stop", "restart")
    ],
    path("t/<slug:slug>/vms/<int:pk>/retry/", actions.VMRetryView.as_view(), name="vm-retry"),
    path("t/<slug:slug>/vms/<int:pk>/expose/", actions.VMExposeView.as_view(), name="vm-expose"),
    path(
        "t/<slug:slug>/vms/<int:pk>/unexpose/",
        actions.VMUnexposeView.as_view(),
        name="vm-unexpose",
    ),
    path("t/<slug:slug>/vms/<int:pk>/delete/", actions.VMDeleteView.as_view(), name="vm-delete"),
    path(
        "t/<slug:slug>/vms/<int:pk>/console/",
        console.VMConsoleView.as_view(),
        name="vm-console",
    ),
    # --- The signed-in user's SSH keys ---------------------------------------------------
    path("account/ssh-keys/", sshkeys.SSHKeysView.as_view(), name="ssh-key-list"),
    path("account/ssh-keys/new/", sshkeys.SSHKeyCreateView.as_view(), name="ssh-key-create"),
    path(
        "account/ssh-keys/<int:pk>/delete/",
        sshkeys.SSHKeyDeleteView.as_view(),
        name="ssh-key-delete",
    ),
]

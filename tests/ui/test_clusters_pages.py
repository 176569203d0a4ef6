"""The clusters pages of the browser portal: who may open what, the list, the dashboard card,
the create form with its quota preview, and the live detail page.

acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator, audrey
auditor, nobody without a tenant. Day-2 actions and kubeconfigs: test_clusters_actions.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from butler_portal.explain import ASK_OPERATORS, explain
from clusters.lifecycle import ASLEEP
from clusters.models import Cluster, KubernetesVersion
from clusters.provisioning import cluster_fail
from clusters.services import cluster_delete, cluster_hibernate, cluster_scale
from tenants.audit import Actor
from tenants.models import Quota, Tenant, User
from tests.clusters.conftest import (
    asleep_cluster_objects,
    kamaji_control_plane,
    machines_of,
    make_cluster_row,
    make_ready,
    observe,
    request,
)
from tests.conftest import browser_client_for
from tests.ui.conftest import (
    OPERATORS,
    READERS,
    acme_url,
    action_row,
    activity_of,
    errors_of,
    expected,
    facts_of,
    htmx,
    listed_names,
    offered,
    page_text,
    preview_amounts,
    queries_for_get,
    row_of,
    statuses,
    summary_counts,
    summary_names,
    timeline_steps,
)


def provisioning(cluster: Cluster) -> Cluster:
    """Applied, with the control plane created and its endpoint not there yet."""
    Cluster.objects.filter(pk=cluster.pk).update(applied_at=timezone.now())
    cluster.refresh_from_db()
    return observe(
        cluster,
        [kamaji_control_plane(cluster.name, done_until="TenantControlPlaneCreated")],
    )


# --- Who may open what ------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_every_page_answers_each_persona_as_their_role_allows(
    personas: dict[str, User], acme: Tenant
) -> None:
    cluster = make_cluster_row(acme, name="web")
    pages = {
        "list": (acme_url("cluster-list"), expected(READERS)),
        "summary": (acme_url("cluster-summary"), expected(READERS)),
        "detail": (acme_url("cluster-detail", cluster.pk), expected(READERS)),
        "create": (acme_url("cluster-create"), expected(OPERATORS)),
        **{
            action: (acme_url(f"cluster-{action}", cluster.pk), expected(OPERATORS))
            for action in (
                "scale",
                "upgrade",
                "hibernate",
                "wake",
                "retry",
                "protect",
                "unprotect",
                "delete",
            )
        },
    }
    outcomes = {page: statuses(personas, url) for page, (url, _) in pages.items()}
    assert outcomes == {page: allowed for page, (_, allowed) in pages.items()}


@pytest.mark.usefixtures("catalog")
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(acme: Tenant) -> None:
    cluster = make_cluster_row(acme, name="web")
    anonymous = browser_client_for(None)
    for url in (
        acme_url("cluster-list"),
        acme_url("cluster-create"),
        acme_url("cluster-detail", cluster.pk),
        acme_url("cluster-kubeconfig", cluster.pk),
        acme_url("cluster-delete", cluster.pk),
    ):
        response = anonymous.get(url)
        assert (response.status_code, response["Location"]) == (
            302,
            f"{reverse('login')}?next={url}",
        ), url
    # An htmx refresh of an open page whose session ended takes the whole page to sign in.
    response = anonymous.get(acme_url("cluster-list"), headers=htmx("cluster-results"))
    assert response["HX-Redirect"].startswith(reverse("login"))


@pytest.mark.usefixtures("catalog")
def test_a_cluster_of_another_tenant_is_not_found_under_any_slug(
    alice: User, gina: User, acme: Tenant, globex: Tenant
) -> None:
    ours = make_cluster_row(acme, name="web")
    theirs = make_cluster_row(globex, name="web")
    alice_client, gina_client = browser_client_for(alice), browser_client_for(gina)
    assert alice_client.get(acme_url("cluster-detail", theirs.pk)).status_code == 404
    assert alice_client.get(acme_url("cluster-scale", theirs.pk)).status_code == 404
    assert alice_client.post(acme_url("cluster-hibernate", theirs.pk)).status_code == 404
    assert gina_client.get(reverse("cluster-detail", args=["globex", ours.pk])).status_code == 404
    assert gina_client.get(reverse("cluster-detail", args=["globex", theirs.pk])).status_code == 200


# --- Navigation and dashboard ------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_clusters_are_in_the_navigation_and_highlighted_on_their_pages(
    carol: User, acme: Tenant
) -> None:
    cluster = make_cluster_row(acme, name="web")
    nav_link = (
        f'<a class="nav-link" href="{acme_url("cluster-list")}" aria-current="page">'
        '<svg class="icon" aria-hidden="true" focusable="false"><use href="/static/icons.svg#cluster">'
    )
    assert nav_link in page_text(carol, acme_url("cluster-list"))
    assert nav_link in page_text(carol, acme_url("cluster-detail", cluster.pk))
    dashboard = page_text(carol, reverse("tenant-dashboard", args=["acme"]))
    assert f'href="{acme_url("cluster-list")}"><svg' in dashboard
    assert (
        'aria-current="page"><svg class="icon" aria-hidden="true" focusable="false"><use href="/static/icons.svg#cluster">'
        not in dashboard
    )


@pytest.mark.usefixtures("catalog")
def test_the_dashboard_card_loads_its_summary_and_reloads_on_cluster_events(
    bob: User, carol: User, acme: Tenant
) -> None:
    dashboard = page_text(carol, reverse("tenant-dashboard", args=["acme"]))
    assert (
        f'<div id="cluster-summary" class="card-body" hx-get="{acme_url("cluster-summary")}" '
        'hx-trigger="load, portal:cluster.changed from:body, portal:resync from:body" '
        'hx-swap="innerHTML" hx-sync="this:queue last">'
    ) in dashboard
    # The dashboard card comes before the network's (order 5 < 10).
    assert dashboard.index('id="cluster-summary"') < dashboard.index('id="network-panel"')

    empty_for_carol = page_text(carol, acme_url("cluster-summary"), **htmx("cluster-summary"))
    assert "No clusters yet" in empty_for_carol
    assert acme_url("cluster-create") not in empty_for_carol
    assert acme_url("cluster-create") in page_text(bob, acme_url("cluster-summary"))

    make_ready(make_cluster_row(acme, name="web", worker_count=2))
    provisioning(make_cluster_row(acme, name="api"))
    failed = make_cluster_row(acme, name="batch", applied_at=timezone.now())
    cluster_fail(cluster_id=failed.pk, reason="Kubernetes rejected it")

    summary = page_text(carol, acme_url("cluster-summary"), **htmx("cluster-summary"))
    assert "<html" not in summary
    assert summary_counts(summary) == {
        "Clusters": 3,
        "Ready": 1,
        "In progress": 1,
        "Need attention": 1,
        "Hibernated": 0,
    }
    # The latest change first.
    assert summary_names(summary) == [
        "batch",
        "api",
        "web",
    ]


# --- The list ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_an_empty_list_invites_members_to_create_and_tells_viewers_why_not(
    bob: User, carol: User, acme: Tenant
) -> None:
    for_bob = page_text(bob, acme_url("cluster-list"))
    assert "No clusters yet" in for_bob
    assert for_bob.count(f'href="{acme_url("cluster-create")}"') == 2  # header and empty state

    for_carol = page_text(carol, acme_url("cluster-list"))
    assert "No clusters yet" in for_carol
    assert acme_url("cluster-create") not in for_carol
    assert (
        '<button type="button" class="btn btn-primary" disabled aria-describedby="create-refusal">'
        in for_carol
    )
    assert "Your role in this tenant is read-only." in for_carol


@pytest.mark.usefixtures("catalog")
def test_a_suspended_tenant_offers_no_create_button(bob: User, acme: Tenant) -> None:
    Tenant.objects.filter(pk=acme.pk).update(state=Tenant.State.SUSPENDED)
    text = page_text(bob, acme_url("cluster-list"))
    assert "Acme Corp is suspended: nothing new can be created." in text
    assert f'href="{acme_url("cluster-create")}"' not in text


@pytest.mark.usefixtures("catalog")
def test_rows_show_phase_version_workers_and_endpoint_and_spin_while_moving(
    bob: User, acme: Tenant
) -> None:
    ready = make_ready(make_cluster_row(acme, name="web", worker_count=2))
    moving = provisioning(make_cluster_row(acme, name="api", deletion_protection=True))

    text = page_text(bob, acme_url("cluster-list"))
    web_row = row_of(text, f"cluster-row-{ready.pk}")
    assert '<span class="badge badge-green" data-phase="ready">Ready</span>' in web_row
    assert '<span class="mono">v1.35.4</span>' in web_row
    assert '<strong>2</strong><span class="muted"> / 2</span>' in web_row
    assert '<span class="mono">192.0.2.10:6443</span>' in web_row
    assert "spinner" not in web_row
    api_row = row_of(text, f"cluster-row-{moving.pk}")
    assert (
        '<span class="badge badge-blue" data-phase="provisioning">'
        '<span class="spinner" aria-hidden="true"></span>Provisioning</span>'
    ) in api_row
    assert moving.phase_reason
    assert moving.phase_reason in api_row
    assert "deletion protection on" in api_row
    assert text.index(api_row) < text.index(web_row)  # by name


@pytest.mark.usefixtures("catalog")
def test_the_table_reloads_itself_on_cluster_events_and_keeps_the_page(
    carol: User, acme: Tenant
) -> None:
    text = page_text(carol, acme_url("cluster-list"))
    assert (
        '<div id="cluster-results" aria-live="polite" hx-get="" '
        'hx-trigger="portal:cluster.changed from:body, portal:resync from:body" '
        'hx-swap="innerHTML" hx-sync="this:queue last">'
    ) in text
    for number in range(30):
        make_cluster_row(acme, name=f"c{number:02d}")
    fragment = page_text(carol, acme_url("cluster-list") + "?page=2", **htmx("cluster-results"))
    assert "<html" not in fragment
    assert listed_names(fragment) == [
        "c25",
        "c26",
        "c27",
        "c28",
        "c29",
    ]
    assert "26–30 of 30" in fragment
    assert 'hx-target="#cluster-results" hx-push-url="true" rel="prev"' in fragment


@pytest.mark.usefixtures("catalog")
def test_search_and_phase_filter_narrow_the_list_on_the_server(carol: User, acme: Tenant) -> None:
    make_ready(make_cluster_row(acme, name="web-prod", worker_count=1))
    make_cluster_row(acme, name="web-test")
    make_cluster_row(acme, name="batch")

    def names(query: str) -> list[str]:
        fragment = page_text(carol, acme_url("cluster-list") + query, **htmx("cluster-results"))
        return listed_names(fragment)

    assert names("?q=web") == ["web-prod", "web-test"]
    assert names("?q=web&phase=ready") == ["web-prod"]
    assert names("?phase=failed") == []
    assert "No cluster matches" in page_text(
        carol, acme_url("cluster-list") + "?q=nope", **htmx("cluster-results")
    )
    # A phase that does not exist is ignored rather than failing the page.
    assert names("?phase=bogus") == ["batch", "web-prod", "web-test"]


@pytest.mark.usefixtures("catalog")
def test_the_list_runs_the_same_queries_for_three_clusters_or_twenty(
    bob: User, acme: Tenant
) -> None:
    client = browser_client_for(bob)
    for number in range(3):
        make_ready(make_cluster_row(acme, name=f"a{number}", worker_count=2))
    url = acme_url("cluster-list")
    queries_for_get(client, url)  # warm up the session and content types
    few = queries_for_get(client, url)
    for number in range(17):
        provisioning(make_cluster_row(acme, name=f"b{number:02d}"))
    many = queries_for_get(client, url)
    assert few == many
    assert many <= 20, many


@pytest.mark.usefixtures("catalog")
def test_the_quota_left_for_clusters_shows_beside_the_create_button(
    bob: User, acme: Tenant
) -> None:
    request(acme, bob, "web", worker_count=3)  # 3 × m1.medium: 6 vCPU, 12 GiB, 60 GiB
    text = page_text(bob, acme_url("cluster-list"))
    assert (
        '<div id="cluster-capacity" class="card-body" hx-get="/t/acme/clusters/" '
        'hx-trigger="portal:quota from:body, portal:resync from:body" hx-swap="innerHTML" '
        'hx-sync="this:queue last">'
    ) in text
    capacity = page_text(bob, acme_url("cluster-list"), **htmx("cluster-capacity"))
    left = dict(
        re.findall(
            r'data-resource="(\w+)">\s*<p class="capacity-label">[^<]+</p>\s*'
            r'<p class="capacity-left"><strong>([^<]+)</strong>',
            capacity,
        )
    )
    assert left == {
        "clusters": "2",
        "worker_nodes": "7",
        "vcpu": "42",
        "memory_mib": "84 GiB",
        "storage_gib": "940 GiB",
        "load_balancer_ips": "4",
    }
    assert "cluster-row" not in capacity  # the table is not rendered for the capacity


# --- Creating ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_the_form_starts_from_the_catalog_defaults(bob: User, acme: Tenant) -> None:
    text = page_text(bob, acme_url("cluster-create"))
    versions = re.findall(r'<option value="\d+"( selected)?>([^<]+)</option>', text)
    assert versions == [
        ("", "v1.36.3"),
        (" selected", "v1.35.4 · default"),
        ("", "v1.34.4"),
        ("", "v1.33.4 · deprecated"),
    ]  # end-of-life v1.32.9 is not offered
    assert re.search(r'value="2"[^>]*checked[^>]*>\s*2 · survives one failure', text)
    assert 'name="worker_count" value="2"' in text
    assert 'name="worker_disk_gib" value="20"' in text
    assert re.search(r'<input type="radio" name="instance_type" value="\d+"[^>]*checked', text)
    assert '<span class="choice-card-title mono">m1.medium</span>' in text
    assert '<span class="choice-card-specs">2 vCPU · 4 GiB</span>' in text
    # Required add-ons are shown checked and locked; the optional one can be chosen.
    assert '<input type="checkbox" id="addon-required-cilium" checked disabled>' in text
    assert '<input type="checkbox" id="addon-required-portal-access" checked disabled>' in text
    assert re.search(r'<input type="checkbox" name="addons" value="\d+"[^>]*id="id_addons_0"', text)
    # The preview of the defaults is there from the start, overhead included.
    assert 'data-fits="true"' in text
    assert "The API server&#x27;s endpoint address" in text
    assert "runs in the tenant's namespace on an allowance the platform adds" in text


@pytest.mark.usefixtures("catalog")
def test_creating_a_cluster_requests_it_and_goes_to_its_page(bob: User, acme: Tenant) -> None:
    client = browser_client_for(bob)
    response = client.post(
        acme_url("cluster-create"), form_values(acme, name="web", deletion_protection="on")
    )
    cluster = Cluster.objects.get(tenant=acme, name="web")
    assert (response.status_code, response["Location"]) == (
        302,
        acme_url("cluster-detail", cluster.pk),
    )
    assert (cluster.worker_count, cluster.deletion_protection, cluster.created_by) == (2, True, bob)
    assert sorted(cluster.addons.values_list("name", flat=True)) == ["cilium", "portal-access"]
    detail = client.get(response["Location"]).content.decode()
    assert "Cluster web was requested: follow it come up here." in detail


def form_values(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    """What the create form posts with its defaults (ids looked up from the catalog)."""
    from clusters.models import InstanceType

    return {
        "name": "",
        "version": KubernetesVersion.objects.get(version="v1.35.4").pk,
        "control_plane_replicas": 2,
        "worker_count": 2,
        "instance_type": InstanceType.objects.get(name="m1.medium").pk,
        "worker_disk_gib": 20,
        **changes,
    }


@pytest.mark.usefixtures("catalog")
def test_an_htmx_submit_navigates_to_the_new_cluster(bob: User, acme: Tenant) -> None:
    response = browser_client_for(bob).post(
        acme_url("cluster-create"), form_values(acme, name="web"), headers=htmx("cluster-form")
    )
    cluster = Cluster.objects.get(name="web")
    assert (response.status_code, response["HX-Redirect"]) == (
        200,
        acme_url("cluster-detail", cluster.pk),
    )


@pytest.mark.usefixtures("catalog")
def test_bad_input_comes_back_on_its_fields_with_everything_typed_kept(
    bob: User, acme: Tenant
) -> None:
    response = browser_client_for(bob).post(
        acme_url("cluster-create"),
        form_values(acme, name="Web_1", worker_count=0, worker_disk_gib=7, addons=[]),
        headers=htmx("cluster-form"),
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in text  # the form's inside, swapped in place
    assert errors_of(text) == {
        "name": [
            "Use lowercase letters, digits and hyphens, starting with a letter and not ending "
            "with a hyphen."
        ],
        "worker_count": ["Ensure this value is greater than or equal to 1."],
        "worker_disk_gib": ["Ensure this value is greater than or equal to 10."],
    }
    assert 'name="name" value="Web_1"' in text
    assert 'name="worker_count" value="0"' in text
    assert 'name="worker_disk_gib" value="7"' in text
    assert "Correct workers, disk per worker (gib) to see what the cluster takes." in text
    assert not Cluster.objects.exists()


@pytest.mark.usefixtures("catalog")
def test_a_request_beyond_the_quota_is_refused_on_the_fields_to_change(
    bob: User, acme: Tenant
) -> None:
    Quota.objects.filter(tenant=acme).update(worker_nodes=4, storage_gib=100)
    response = browser_client_for(bob).post(
        acme_url("cluster-create"),
        form_values(acme, name="big", worker_count=6, worker_disk_gib=30),
        headers=htmx("cluster-form"),
    )
    text = response.content.decode()
    assert errors_of(text) == {
        "worker_count": ["Needs 6 more worker nodes but only 4 of 4 is left in the quota."],
        "worker_disk_gib": [
            "Needs 180 GiB more storage but only 100 GiB of 100 GiB is left in the quota."
        ],
    }
    assert 'name="name" value="big"' in text
    assert 'name="worker_count" value="6"' in text
    # The preview beside the button shows the same refusals, with a link to the field.
    assert 'data-fits="false"' in text
    assert '<a href="#id_worker_count">Change it</a>' in text
    assert not Cluster.objects.exists()


@pytest.mark.usefixtures("catalog")
def test_a_taken_name_and_a_suspended_tenant_are_refused_by_the_service(
    bob: User, acme: Tenant
) -> None:
    request(acme, bob, "web")
    client = browser_client_for(bob)
    taken = client.post(acme_url("cluster-create"), form_values(acme, name="web"))
    assert errors_of(taken.content.decode()) == {"name": ["acme already has a cluster named web."]}
    Tenant.objects.filter(pk=acme.pk).update(state=Tenant.State.SUSPENDED)
    suspended = client.post(acme_url("cluster-create"), form_values(acme, name="api"))
    assert "Tenant acme is suspended: nothing new can be created." in suspended.content.decode()
    assert Cluster.objects.count() == 1


@pytest.mark.usefixtures("catalog")
def test_the_preview_follows_the_inputs_and_shows_what_does_not_fit(
    bob: User, acme: Tenant
) -> None:
    client = browser_client_for(bob)
    text = client.get(acme_url("cluster-create")).content.decode()
    assert 'hx-get="/t/acme/clusters/new/"' in text
    assert (
        'hx-trigger="change from:#cluster-form, input delay:400ms from:(#cluster-form '
        "input[type='number']), portal:quota from:body\""
    ) in text

    values = form_values(acme, worker_count=9)
    preview = client.get(
        acme_url("cluster-create"),
        {key: values[key] for key in ("instance_type", "worker_count", "worker_disk_gib")},
        headers=htmx("quota-preview"),
    ).content.decode()
    assert preview.lstrip().startswith('<div class="quota-preview" data-fits="true">')
    assert preview_amounts(preview) == {
        "clusters": "1",
        "worker_nodes": "9",
        "vcpu": "18",
        "memory_mib": "36 GiB",
        "storage_gib": "180 GiB",
        "load_balancer_ips": "1",
    }

    too_many = client.get(
        acme_url("cluster-create"),
        {"instance_type": values["instance_type"], "worker_count": 11, "worker_disk_gib": 20},
        headers=htmx("quota-preview"),
    ).content.decode()
    assert 'data-fits="false"' in too_many
    assert "Needs 11 more worker nodes but only 10 of 10 is left in the quota." in too_many

    half_typed = client.get(
        acme_url("cluster-create"),
        {"instance_type": values["instance_type"], "worker_count": "", "worker_disk_gib": 20},
        headers=htmx("quota-preview"),
    ).content.decode()
    assert "Correct workers to see what the cluster takes." in half_typed

    assert (
        browser_client_for(User.objects.get(username="bob"))
        .get(acme_url("cluster-create"), headers=htmx("quota-preview"))
        .status_code
        == 200
    )


def test_viewers_never_get_the_form_nor_its_preview(carol: User, catalog: None) -> None:
    client = browser_client_for(carol)
    assert client.get(acme_url("cluster-create")).status_code == 403
    assert client.get(acme_url("cluster-create"), headers=htmx("quota-preview")).status_code == 403
    refused = client.post(acme_url("cluster-create"), {"name": "sneaky"})
    assert refused.status_code == 403
    assert "Your role in this tenant is read-only." in refused.content.decode()
    assert not Cluster.objects.exists()


# --- The detail page --------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
def test_a_provisioning_cluster_shows_its_timeline_progress_and_what_it_waits_for(
    bob: User, acme: Tenant
) -> None:
    cluster = provisioning(make_cluster_row(acme, name="api", worker_count=2))
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))
    steps = timeline_steps(text)
    assert steps[:2] == [("control-plane", "done"), ("endpoint", "active")]
    assert [key for key, _ in steps] == [
        "control-plane",
        "endpoint",
        "control-plane-ready",
        "kubeconfig",
        "worker-0",
        "worker-1",
        "addon-cilium",
        "addon-portal-access",
    ]
    assert '<span class="timeline-pulse"></span>' in text  # the active step, animated
    assert 'aria-valuemax="8" aria-valuenow="1"' in text
    assert "1 of 8 steps done" in text
    assert cluster.phase_reason in text
    # The header's badge spins too, and sits where the panel can replace it.
    assert (
        '<span id="cluster-phase" class="badge badge-blue badge-title" data-phase="provisioning">'
        '<span class="spinner" aria-hidden="true"></span>Provisioning</span>'
    ) in text


@pytest.mark.usefixtures("catalog")
def test_a_failed_cluster_says_why_in_plain_words_and_stops_its_timeline(
    bob: User, acme: Tenant
) -> None:
    cluster = provisioning(make_cluster_row(acme, name="api"))
    cluster_fail(
        cluster_id=cluster.pk,
        reason="Kubernetes rejected KamajiControlPlane api: spec.version: Unsupported value",
    )
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))
    assert "object-status-red" in text
    assert (
        '<p class="object-reason"><span>Kubernetes rejected KamajiControlPlane api: '
        "spec.version: Unsupported value</span></p>"
    ) in text
    assert "timeline-pulse" not in text
    assert 'data-step="endpoint" data-state="stopped"' in text
    assert "progressbar" not in text
    assert 'data-action="retry"' in text


@pytest.mark.usefixtures("catalog")
def test_a_failed_step_is_red_with_its_message(bob: User, acme: Tenant) -> None:
    cluster = make_cluster_row(acme, name="api", applied_at=timezone.now())
    observe(
        cluster,
        [
            kamaji_control_plane(
                "api",
                waiting=(
                    "TenantControlPlaneAddressReady",
                    "Pending",
                    "no address left in pool tenant-acme",
                ),
            )
        ],
    )
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))
    step = re.search(r'<li class="timeline-step is-failed".*?</li>', text, re.S)
    assert step is not None
    sentence = explain(
        "no address left in pool tenant-acme",
        fallback=f"No load-balancer address could be assigned. {ASK_OPERATORS}",
    ).text
    assert f'<p class="timeline-message">{escape(sentence)}</p>' in step.group(0)
    assert '<span class="timeline-state">Failed</span>' in step.group(0)
    # Kamaji's own words, one click away on the step and on the status card.
    raw = "<summary>What Kubernetes said</summary><code>no address left in pool tenant-acme</code>"
    assert raw in step.group(0)
    status = re.search(r'<section class="card object-status.*?</section>', text, re.S)
    assert status is not None
    assert raw in status.group(0)
    assert sentence in status.group(0)


@pytest.mark.usefixtures("catalog")
def test_a_ready_cluster_shows_its_facts_and_the_actions_a_member_may_take(
    bob: User, acme: Tenant
) -> None:
    cluster = make_ready(make_cluster_row(acme, name="web", worker_count=2))
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))
    assert "Running: the API server answers at" in text
    assert '<span class="mono">https://192.0.2.10:6443</span>' in text
    assert "progressbar" not in text
    facts = facts_of(text)
    assert facts["Workers"] == "2 of 2 ready"
    assert facts["Worker disk"] == "20 GiB each"
    assert facts["Control plane"] == "2 replicas · running"
    assert facts["Deletion protection"] == "Off"
    elements = dict(re.findall(r'<li class="action-item" data-action="(\w+)">\s*<(a|div)', text))
    assert elements == {
        "kubeconfig": "a",
        "scale": "a",
        "upgrade": "a",
        "hibernate": "a",
        "protect": "a",
        "delete": "a",
    }
    assert "Next: v1.36.3." in text
    assert f'hx-get="{acme_url("cluster-scale", cluster.pk)}" hx-target="#modal-body"' in text


@pytest.mark.usefixtures("catalog")
def test_refused_actions_stay_visible_disabled_with_the_reason(bob: User, acme: Tenant) -> None:
    cluster = provisioning(make_cluster_row(acme, name="api", deletion_protection=True))
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))
    upgrade = action_row(text, "upgrade")
    assert '<div class="action-row is-disabled" aria-disabled="true"' in upgrade
    assert 'title="Only a running cluster that is not already changing can be upgraded."' in upgrade
    assert acme_url("cluster-upgrade", cluster.pk) not in upgrade
    delete = action_row(text, "delete")
    assert "Deletion protection is on: turn it off first." in delete
    assert acme_url("cluster-delete", cluster.pk) not in delete
    assert acme_url("cluster-unprotect", cluster.pk) in action_row(text, "unprotect")


@pytest.mark.usefixtures("catalog")
def test_viewers_and_auditors_see_the_cluster_without_any_control(
    carol: User, audrey: User, acme: Tenant
) -> None:
    cluster = make_ready(make_cluster_row(acme, name="web"))
    for reader in (carol, audrey):
        text = page_text(reader, acme_url("cluster-detail", cluster.pk))
        assert offered(text) == ["kubeconfig"], reader
        assert "read-only" in action_row(text, "kubeconfig")
        for action in ("scale", "upgrade", "hibernate", "delete", "protect"):
            assert acme_url(f"cluster-{action}", cluster.pk) not in text
        assert "You have read-only access to Acme Corp" in text


@pytest.mark.usefixtures("catalog")
def test_the_panel_reloads_for_this_clusters_events_only(carol: User, acme: Tenant) -> None:
    cluster = make_cluster_row(acme, name="web")
    text = page_text(carol, acme_url("cluster-detail", cluster.pk))
    assert (
        f'<div id="cluster-panel" class="object-panel" hx-get="{acme_url("cluster-detail", cluster.pk)}" '
        f'hx-trigger="portal:cluster.changed[detail.id=={cluster.pk}] from:body, portal:resync from:body" '
        'hx-swap="innerHTML" hx-sync="this:queue last">'
    ) in text
    make_ready(cluster)
    panel = page_text(carol, acme_url("cluster-detail", cluster.pk), **htmx("cluster-panel"))
    assert "<html" not in panel
    # The header's badge comes along out of band.
    assert panel.lstrip().startswith(
        '<span id="cluster-phase" hx-swap-oob="true" class="badge badge-green badge-title" '
        'data-phase="ready">Ready</span>'
    )
    assert 'data-step="worker-0" data-state="done"' in panel


@pytest.mark.usefixtures("catalog")
def test_after_deletion_the_open_page_says_the_cluster_is_gone(
    bob: User, carol: User, acme: Tenant
) -> None:
    cluster = request(acme, bob, "web")
    url = acme_url("cluster-detail", cluster.pk)
    cluster_delete(actor=Actor(bob), cluster=cluster, confirm_name="web")  # gone at once: no k8s

    panel = browser_client_for(carol).get(url, headers=htmx("cluster-panel"))
    text = panel.content.decode()
    assert panel.status_code == 200
    assert 'data-gone="true"' in text
    assert "This cluster is gone" in text
    assert f'href="{acme_url("cluster-list")}">Back to clusters</a>' in text
    assert (
        '<span id="cluster-phase" hx-swap-oob="true" class="badge badge-grey badge-title"' in text
    )
    # Opened afresh, a deleted cluster is simply not found.
    assert browser_client_for(carol).get(url).status_code == 404


@pytest.mark.usefixtures("catalog")
def test_the_action_log_tells_who_did_what_in_words(bob: User, acme: Tenant) -> None:
    cluster = request(acme, bob, "web", worker_count=2)
    cluster_fail(cluster_id=cluster.pk, reason="It broke")
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))
    assert activity_of(text) == [
        ("fail", "system", "gave up provisioning"),
        ("create", "bob", "requested the cluster"),
    ]
    assert "<div><dt>worker count</dt><dd>2</dd></div>" in text
    assert "<div><dt>addons</dt><dd>cilium, portal-access</dd></div>" in text


# --- Day 2: the page names the action asked for ------------------------------------------------


def badge_of(text: str) -> tuple[str, str]:
    """The page header's phase badge: (data-phase, its words)."""
    found = re.search(
        r'id="cluster-phase"[^>]*data-phase="(\w+)">(?:<span[^>]*></span>)?([^<]+)<', text
    )
    assert found is not None
    return found.group(1), found.group(2)


@pytest.mark.usefixtures("catalog")
def test_hibernating_then_hibernated_with_nothing_left_in_progress(bob: User, acme: Tenant) -> None:
    cluster = make_ready(request(acme, bob))
    url = acme_url("cluster-detail", cluster.pk)

    cluster_hibernate(actor=Actor(bob), cluster=cluster)
    text = page_text(bob, url)
    assert badge_of(text) == ("hibernating", "Hibernating")
    assert "Going to sleep: stopping 2 workers and the control plane." in text
    assert timeline_steps(text) == [
        ("hibernate-workers", "active"),
        ("hibernate-control-plane", "active"),
    ]
    assert 'role="progressbar"' in text

    observe(cluster, asleep_cluster_objects(cluster.name), gone=machines_of(cluster))
    text = page_text(bob, url)
    assert badge_of(text) == ("hibernated", "Hibernated")
    assert ASLEEP in text
    assert "Waiting for Kubernetes to report on it" not in text
    assert timeline_steps(text) == [
        ("hibernate-workers", "done"),
        ("hibernate-control-plane", "done"),
    ]
    assert "In progress" not in text
    assert "wake" in offered(text)
    assert "is-disabled" not in action_row(text, "wake")


@pytest.mark.usefixtures("catalog")
def test_scaling_a_ready_cluster_says_scaling_with_its_progress(bob: User, acme: Tenant) -> None:
    cluster = make_ready(request(acme, bob))

    cluster_scale(actor=Actor(bob), cluster=cluster, worker_count=3)
    text = page_text(bob, acme_url("cluster-detail", cluster.pk))

    assert badge_of(text) == ("scaling", "Scaling")
    assert "Scaling the workers to 3: 2 of 3 ready." in text
    assert 'aria-valuenow="8"' in text
    assert 'aria-valuemax="10"' in text
    assert ("scale", "active") in timeline_steps(text)

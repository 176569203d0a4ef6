"""The virtual machine pages of the browser portal: who may open what, the list with its
gauges, the dashboard card, the create form with its quota preview, and the live detail page.

acme: alice admin, bob member, carol viewer; globex: gina admin; oscar operator, audrey
auditor, nobody without a tenant. Actions (power, ports, deletion, bulk): test_vm_actions.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from butler_portal.celery import app as celery_app
from tenants.audit import Actor
from tenants.models import AuditEvent, Quota, QuotaClaim, Tenant, User
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
from tests.vms.conftest import (
    add_key,
    condition,
    create,
    data_volume_obj,
    image,
    importing,
    instance_type,
    make_running,
    make_vm_row,
    observe,
    service_obj,
    stopped,
    storage_class,
    virtual_machine_obj,
)
from vms.models import VirtualMachine
from vms.provisioning import vm_fail
from vms.services import vm_delete, vm_expose, vm_stop
from vms.spec import PortSpec

pytestmark = pytest.mark.usefixtures("vm_catalog")


# --- Who may open what ------------------------------------------------------------------------


def test_every_page_answers_each_persona_as_their_role_allows(
    personas: dict[str, User], acme: Tenant
) -> None:
    vm = make_running(make_vm_row(acme, name="web"))
    pages = {
        "list": (acme_url("vm-list"), expected(READERS)),
        "summary": (acme_url("vm-summary"), expected(READERS)),
        "detail": (acme_url("vm-detail", vm.pk), expected(READERS)),
        "create": (acme_url("vm-create"), expected(OPERATORS)),
        **{
            action: (acme_url(f"vm-{action}", vm.pk), expected(OPERATORS))
            for action in ("start", "stop", "restart", "retry", "expose", "unexpose", "delete")
        },
    }
    outcomes = {page: statuses(personas, url) for page, (url, _) in pages.items()}
    assert outcomes == {page: allowed for page, (_, allowed) in pages.items()}


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(acme: Tenant) -> None:
    vm = make_vm_row(acme, name="web")
    anonymous = browser_client_for(None)
    for url in (
        acme_url("vm-list"),
        acme_url("vm-create"),
        acme_url("vm-detail", vm.pk),
        acme_url("vm-stop", vm.pk),
        acme_url("vm-delete", vm.pk),
        reverse("ssh-key-list"),
    ):
        response = anonymous.get(url)
        assert (response.status_code, response["Location"]) == (
            302,
            f"{reverse('login')}?next={url}",
        ), url
    response = anonymous.get(acme_url("vm-list"), headers=htmx("vm-results"))
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_a_vm_of_another_tenant_is_not_found_under_any_slug(
    alice: User, gina: User, acme: Tenant, globex: Tenant
) -> None:
    ours = make_vm_row(acme, name="web")
    theirs = make_vm_row(globex, name="web")
    alice_client, gina_client = browser_client_for(alice), browser_client_for(gina)
    assert alice_client.get(acme_url("vm-detail", theirs.pk)).status_code == 404
    assert alice_client.get(acme_url("vm-expose", theirs.pk)).status_code == 404
    assert alice_client.post(acme_url("vm-stop", theirs.pk)).status_code == 404
    assert gina_client.get(reverse("vm-detail", args=["globex", ours.pk])).status_code == 404
    assert gina_client.get(reverse("vm-detail", args=["globex", theirs.pk])).status_code == 200


# --- Navigation and dashboard ------------------------------------------------------------------


def test_vms_are_in_the_navigation_and_highlighted_on_their_pages(
    carol: User, acme: Tenant
) -> None:
    vm = make_vm_row(acme, name="web")
    nav_link = (
        f'<a class="nav-link" href="{acme_url("vm-list")}" aria-current="page">'
        '<svg class="icon" aria-hidden="true" focusable="false"><use href="/static/icons.svg#vm">'
    )
    assert nav_link in page_text(carol, acme_url("vm-list"))
    assert nav_link in page_text(carol, acme_url("vm-detail", vm.pk))
    dashboard = page_text(carol, reverse("tenant-dashboard", args=["acme"]))
    assert f'href="{acme_url("vm-list")}"><svg' in dashboard
    # After clusters, before the network.
    assert dashboard.index(">Clusters<") < dashboard.index(">Virtual machines<")
    assert dashboard.index(">Virtual machines<") < dashboard.index(">Network<")


def test_the_dashboard_card_counts_vms_by_state_and_reloads_on_vm_events(
    bob: User, carol: User, acme: Tenant
) -> None:
    dashboard = page_text(carol, reverse("tenant-dashboard", args=["acme"]))
    assert (
        f'<div id="vm-summary" class="card-body" hx-get="{acme_url("vm-summary")}" '
        'hx-trigger="load, portal:vm.changed from:body, portal:resync from:body" '
        'hx-swap="innerHTML" hx-sync="this:queue last">'
    ) in dashboard
    assert dashboard.index('id="cluster-summary"') < dashboard.index('id="vm-summary"')
    assert dashboard.index('id="vm-summary"') < dashboard.index('id="network-panel"')

    empty_for_carol = page_text(carol, acme_url("vm-summary"), **htmx("vm-summary"))
    assert "No virtual machines yet" in empty_for_carol
    assert acme_url("vm-create") not in empty_for_carol
    assert acme_url("vm-create") in page_text(bob, acme_url("vm-summary"))

    make_running(make_vm_row(acme, name="web"))
    stopped(make_vm_row(acme, name="db"))
    importing(make_vm_row(acme, name="build"))
    vm_fail(vm_id=make_vm_row(acme, name="broken").pk, reason="Kubernetes rejected it")

    summary = page_text(carol, acme_url("vm-summary"), **htmx("vm-summary"))
    assert summary_counts(summary) == {
        "Virtual machines": 4,
        "Running": 1,
        "In progress": 1,
        "Need attention": 1,
        "Stopped": 1,
    }
    assert summary_names(summary) == [
        "broken",
        "build",
        "db",
        "web",
    ]


# --- The list ---------------------------------------------------------------------------------


def test_an_empty_list_invites_members_to_create_and_tells_viewers_why_not(
    bob: User, carol: User, acme: Tenant
) -> None:
    for_bob = page_text(bob, acme_url("vm-list"))
    assert "No virtual machines yet" in for_bob
    assert for_bob.count(f'href="{acme_url("vm-create")}"') == 2  # header and empty state
    assert 'id="vm-bulk"' in for_bob

    for_carol = page_text(carol, acme_url("vm-list"))
    assert acme_url("vm-create") not in for_carol
    assert (
        '<button type="button" class="btn btn-primary" disabled aria-describedby="create-refusal">'
        in for_carol
    )
    assert "Your role in this tenant is read-only." in for_carol
    assert 'id="vm-bulk"' not in for_carol


def test_a_suspended_tenant_offers_no_create_button(bob: User, acme: Tenant) -> None:
    Tenant.objects.filter(pk=acme.pk).update(state=Tenant.State.SUSPENDED)
    text = page_text(bob, acme_url("vm-list"))
    assert "Acme Corp is suspended: nothing new can be created." in text
    assert f'href="{acme_url("vm-create")}"' not in text


def test_rows_show_state_image_size_addresses_and_spin_while_moving(
    bob: User, carol: User, acme: Tenant
) -> None:
    running = make_running(make_vm_row(acme, name="web", instance_type=instance_type("m1.medium")))
    moving = importing(make_vm_row(acme, name="build", disk_gib=40))

    text = page_text(bob, acme_url("vm-list"))
    web_row = row_of(text, f"vm-row-{running.pk}")
    assert '<span class="badge badge-green" data-state="running">Running</span>' in web_row
    assert "<td>Ubuntu 24.04 LTS</td>" in web_row
    assert '<span class="mono">m1.medium</span>' in web_row
    assert "2 vCPU · 4 GiB · 20 GiB disk" in web_row
    assert '<span class="mono cell-address">10.200.1.14</span>' in web_row
    assert "spinner" not in web_row
    build_row = row_of(text, f"vm-row-{moving.pk}")
    assert (
        '<span class="badge badge-blue" data-state="provisioning">'
        '<span class="spinner" aria-hidden="true"></span>Provisioning</span>'
    ) in build_row
    assert "Importing the disk image: 42.50%." in build_row
    assert text.index(build_row) < text.index(web_row)  # by name
    # Members tick rows for bulk actions; the boxes belong to the toolbar's form.
    assert (
        f'<input type="checkbox" id="vm-select-{running.pk}" name="ids" value="{running.pk}" '
        'form="vm-bulk" hx-preserve="true" aria-label="Select web">'
    ) in web_row
    assert 'type="checkbox"' not in page_text(carol, acme_url("vm-list"))


def test_the_table_reloads_itself_on_vm_events_and_keeps_the_page(
    carol: User, acme: Tenant
) -> None:
    text = page_text(carol, acme_url("vm-list"))
    assert (
        '<div id="vm-results" aria-live="polite" hx-get="" '
        'hx-trigger="portal:vm.changed from:body, portal:resync from:body" '
        'hx-swap="innerHTML" hx-sync="this:queue last">'
    ) in text
    for number in range(30):
        make_vm_row(acme, name=f"vm{number:02d}")
    fragment = page_text(carol, acme_url("vm-list") + "?page=2", **htmx("vm-results"))
    assert "<html" not in fragment
    assert listed_names(fragment) == [f"vm{number}" for number in range(25, 30)]
    assert "26–30 of 30" in fragment
    assert 'hx-target="#vm-results" hx-push-url="true" rel="prev"' in fragment


def test_search_and_state_filter_narrow_the_list_on_the_server(carol: User, acme: Tenant) -> None:
    make_running(make_vm_row(acme, name="web-prod"))
    make_vm_row(acme, name="web-test")
    stopped(make_vm_row(acme, name="db"))

    def names(query: str) -> list[str]:
        fragment = page_text(carol, acme_url("vm-list") + query, **htmx("vm-results"))
        return listed_names(fragment)

    assert names("?q=web") == ["web-prod", "web-test"]
    assert names("?q=web&state=running") == ["web-prod"]
    assert names("?state=stopped") == ["db"]
    assert names("?state=failed") == []
    assert "No virtual machine matches" in page_text(
        carol, acme_url("vm-list") + "?q=nope", **htmx("vm-results")
    )
    assert names("?state=bogus") == ["db", "web-prod", "web-test"]


def test_the_list_runs_the_same_queries_for_one_vm_or_twenty(bob: User, acme: Tenant) -> None:
    client = browser_client_for(bob)
    add_key(bob, "laptop")
    first = make_running(make_vm_row(acme, name="a0"))
    first.ssh_keys.set(bob.ssh_keys.all())
    url = acme_url("vm-list")
    queries_for_get(client, url)  # warm up the session and content types
    one = queries_for_get(client, url)
    for number in range(19):
        vm = make_running(make_vm_row(acme, name=f"b{number:02d}"))
        vm.ssh_keys.set(bob.ssh_keys.all())
        if number % 5 == 0:  # four exposed, within the load-balancer quota
            vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 22, 22)])
    many = queries_for_get(client, url)
    assert one == many
    assert many <= 20, many


def test_the_quota_left_for_vms_shows_as_gauges_beside_the_create_button(
    bob: User, acme: Tenant
) -> None:
    create(acme, bob, "web", instance_type=instance_type("m1.medium"), disk_gib=30)
    text = page_text(bob, acme_url("vm-list"))
    assert (
        '<div id="vm-capacity" class="card-body" hx-get="/t/acme/vms/" '
        'hx-trigger="portal:quota from:body, portal:resync from:body" hx-swap="innerHTML" '
        'hx-sync="this:queue last">'
    ) in text
    capacity = page_text(bob, acme_url("vm-list"), **htmx("vm-capacity"))
    gauges = dict(
        re.findall(
            r'<h3 class="gauge-label">([^<]+)</h3>\s*<p class="gauge-numbers"><strong>([^<]+)</strong>',
            capacity,
        )
    )
    assert gauges == {
        "Virtual machines": "1",
        "vCPU": "2",
        "Memory": "4 GiB",
        "Storage": "30 GiB",
    }
    assert "vm-row" not in capacity  # the table is not rendered for the gauges


# --- Creating ---------------------------------------------------------------------------------


def test_the_form_starts_from_the_catalog_defaults_and_offers_only_ones_own_keys(
    bob: User, carol: User, acme: Tenant
) -> None:
    own = add_key(bob, "laptop")
    add_key(carol, "carols")
    text = page_text(bob, acme_url("vm-create"))
    assert re.search(rf'<input type="radio" name="image" value="{image().pk}"[^>]*checked', text)
    assert '<span class="choice-card-title">Ubuntu 24.04 LTS</span>' in text
    assert re.search(
        rf'<input type="radio" name="instance_type" value="{instance_type().pk}"[^>]*checked', text
    )
    assert 'name="disk_gib" value="20"' in text
    assert f'<option value="{storage_class().pk}" selected>' in text
    assert re.search(r'<input type="checkbox" name="start" [^>]*checked', text)
    # The keys: bob's own only, and a way to add one without losing the form.
    assert re.findall(r'<input type="checkbox" name="ssh_keys" value="(\d+)"', text) == [
        str(own.pk)
    ]
    assert own.fingerprint in text
    assert "carols" not in text
    assert f'href="{reverse("ssh-key-list")}" target="_blank"' in text
    assert 'hx-trigger="focus from:window"' in text
    # The preview of the defaults is there from the start.
    assert 'data-fits="true"' in text
    assert "1 vCPU of m1.small" in text


def form_values(**changes: Any) -> dict[str, Any]:
    """What the create form posts with its defaults."""
    return {
        "name": "",
        "image": image().pk,
        "instance_type": instance_type().pk,
        "disk_gib": 20,
        "storage_class": storage_class().pk,
        "user_data": "",
        "start": "on",
        **changes,
    }


def test_creating_a_vm_reserves_its_quota_queues_provisioning_and_goes_to_its_page(
    bob: User,
    acme: Tenant,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The task runs in the request once it commits (the embedded mode's way), whatever
    # broker this test run is configured with.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    key = add_key(bob, "laptop")
    client = browser_client_for(bob)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            acme_url("vm-create"),
            form_values(
                name="web",
                instance_type=instance_type("m1.medium").pk,
                disk_gib=30,
                ssh_keys=[key.pk],
                user_data="#cloud-config\npackages:\n  - htop\n",
            ),
        )
    vm = VirtualMachine.objects.get(tenant=acme, name="web")
    assert (response.status_code, response["Location"]) == (302, acme_url("vm-detail", vm.pk))
    assert (vm.instance_type.name, vm.disk_gib, vm.created_by, vm.run_strategy) == (
        "m1.medium",
        30,
        bob,
        "Always",
    )
    assert list(vm.ssh_keys.all()) == [key]
    assert vm.authorized_keys == [key.public_key]
    assert vm.has_user_data
    assert "htop" not in vm.user_data_encrypted  # kept encrypted
    claim = QuotaClaim.objects.get(tenant=acme, subject=f"vm:{vm.pk}")
    assert (claim.vms, claim.vcpu, claim.memory_mib, claim.storage_gib) == (1, 2, 4096, 30)
    # The provisioning task ran once the request committed (here without Kubernetes).
    assert callbacks
    vm.refresh_from_db()
    assert vm.reason == "No Kubernetes cluster is configured: nothing was applied."
    assert AuditEvent.objects.filter(
        action="create", object_type="virtualmachine", object_id=str(vm.pk), actor=bob
    ).exists()
    detail = client.get(response["Location"]).content.decode()
    assert "Virtual machine web was requested." in detail


def test_a_vm_created_stopped_waits_with_run_strategy_halted(bob: User, acme: Tenant) -> None:
    values = form_values(name="later")
    del values["start"]
    browser_client_for(bob).post(acme_url("vm-create"), values)
    assert VirtualMachine.objects.get(name="later").run_strategy == "Halted"


def test_an_htmx_submit_navigates_to_the_new_vm(bob: User, acme: Tenant) -> None:
    response = browser_client_for(bob).post(
        acme_url("vm-create"), form_values(name="web"), headers=htmx("vm-form")
    )
    vm = VirtualMachine.objects.get(name="web")
    assert (response.status_code, response["HX-Redirect"]) == (200, acme_url("vm-detail", vm.pk))


def test_bad_input_comes_back_on_its_fields_with_everything_typed_kept(
    bob: User, acme: Tenant
) -> None:
    response = browser_client_for(bob).post(
        acme_url("vm-create"),
        form_values(name="Web_1", disk_gib=0, user_data="#cloud-config\nruncmd: [ls"),
        headers=htmx("vm-form"),
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in text  # the form's inside, swapped in place
    assert errors_of(text) == {
        "name": [
            "Use lowercase letters, digits and hyphens, starting with a letter and not ending "
            "with a hyphen."
        ],
        "disk_gib": ["Ensure this value is greater than or equal to 1."],
    }
    assert 'name="name" value="Web_1"' in text
    assert 'name="disk_gib" value="0"' in text
    assert "#cloud-config\nruncmd: [ls</textarea>" in text
    assert "Correct root disk (gib) to see what the virtual machine takes." in text
    assert not VirtualMachine.objects.exists()


def test_invalid_cloud_init_is_refused_on_its_field(bob: User, acme: Tenant) -> None:
    text = (
        browser_client_for(bob)
        .post(
            acme_url("vm-create"), form_values(name="web", user_data="#cloud-config\nruncmd: [ls")
        )
        .content.decode()
    )
    errors = errors_of(text)
    assert list(errors) == ["user_data"]
    assert errors["user_data"][0].startswith("Not valid YAML (line 2, column 12): expected")
    assert 'name="name" value="web"' in text
    assert not VirtualMachine.objects.exists()


def test_a_request_beyond_the_quota_is_refused_on_the_fields_to_change(
    bob: User, acme: Tenant
) -> None:
    Quota.objects.filter(tenant=acme).update(vcpu=1, storage_gib=10)
    response = browser_client_for(bob).post(
        acme_url("vm-create"),
        form_values(name="big", instance_type=instance_type("m1.medium").pk, disk_gib=30),
        headers=htmx("vm-form"),
    )
    text = response.content.decode()
    assert errors_of(text) == {
        "instance_type": ["Needs 2 more vcpu but only 1 of 1 is left in the quota."],
        "disk_gib": ["Needs 30 GiB more storage but only 10 GiB of 10 GiB is left in the quota."],
    }
    assert 'name="name" value="big"' in text
    assert 'name="disk_gib" value="30"' in text
    # The preview beside the button shows the same refusals, with a link to the field.
    assert 'data-fits="false"' in text
    assert '<a href="#id_disk_gib">Change it</a>' in text
    assert not VirtualMachine.objects.exists()


def test_the_vm_count_of_the_quota_is_refused_for_the_whole_form(bob: User, acme: Tenant) -> None:
    Quota.objects.filter(tenant=acme).update(vms=1)
    create(acme, bob, "first")
    text = (
        browser_client_for(bob)
        .post(acme_url("vm-create"), form_values(name="second"))
        .content.decode()
    )
    assert errors_of(text) == {
        "__all__": ["Needs 1 more virtual machines but only 0 of 1 is left in the quota."]
    }
    assert VirtualMachine.objects.count() == 1


def test_someone_elses_ssh_key_and_a_taken_name_are_refused(
    bob: User, carol: User, acme: Tenant
) -> None:
    create(acme, bob, "web")
    carols = add_key(carol, "carols")
    text = (
        browser_client_for(bob)
        .post(acme_url("vm-create"), form_values(name="web", ssh_keys=[carols.pk]))
        .content.decode()
    )
    assert errors_of(text) == {
        "ssh_keys": [f"Select a valid choice. {carols.pk} is not one of the available choices."]
    }
    refused = (
        browser_client_for(bob)
        .post(acme_url("vm-create"), form_values(name="web"))
        .content.decode()
    )
    assert errors_of(refused) == {"name": ["acme already has a virtual machine named web."]}
    assert VirtualMachine.objects.count() == 1


def test_a_disk_smaller_than_the_image_needs_is_refused_on_the_disk(
    bob: User, acme: Tenant
) -> None:
    text = (
        browser_client_for(bob)
        .post(acme_url("vm-create"), form_values(name="web", disk_gib=5))
        .content.decode()
    )
    assert errors_of(text) == {"disk_gib": ["Ubuntu 24.04 LTS needs a disk of at least 10 GiB."]}
    assert not VirtualMachine.objects.exists()


def test_the_preview_follows_the_inputs_and_shows_what_does_not_fit(
    bob: User, acme: Tenant
) -> None:
    client = browser_client_for(bob)
    text = client.get(acme_url("vm-create")).content.decode()
    assert (
        'hx-trigger="change from:#vm-form, input delay:400ms from:(#vm-form '
        "input[type='number']), portal:quota from:body\""
    ) in text
    assert "hx-include=\"#vm-form [name='instance_type'], #vm-form [name='disk_gib']\"" in text

    large: dict[str, int | str] = {"instance_type": instance_type("m1.large").pk, "disk_gib": 50}
    preview = client.get(acme_url("vm-create"), large, headers=htmx("quota-preview")).content
    assert preview_amounts(preview.decode()) == {
        "vms": "1",
        "vcpu": "4",
        "memory_mib": "8 GiB",
        "storage_gib": "50 GiB",
    }
    assert "<form" not in preview.decode()

    too_big = client.get(
        acme_url("vm-create"), {**large, "disk_gib": 1001}, headers=htmx("quota-preview")
    ).content.decode()
    assert 'data-fits="false"' in too_big
    assert "Needs 1001 GiB more storage but only 1000 GiB of 1000 GiB is left" in too_big

    half_typed = client.get(
        acme_url("vm-create"), {**large, "disk_gib": ""}, headers=htmx("quota-preview")
    ).content.decode()
    assert "Correct root disk (gib) to see what the virtual machine takes." in half_typed


def test_the_key_choices_come_again_with_the_ticked_ones_kept(bob: User, acme: Tenant) -> None:
    first = add_key(bob, "laptop")
    client = browser_client_for(bob)
    second = add_key(bob, "desktop")  # added in another tab meanwhile
    fragment = client.get(
        acme_url("vm-create"), {"ssh_keys": [first.pk]}, headers=htmx("vm-ssh-keys")
    ).content.decode()
    assert "<form" not in fragment
    boxes = re.findall(r'<input type="checkbox" name="ssh_keys" value="(\d+)"([^>]*)>', fragment)
    assert {int(pk): "checked" in rest for pk, rest in boxes} == {first.pk: True, second.pk: False}
    assert "field-errors" not in fragment


def test_viewers_never_get_the_form_nor_its_preview(carol: User, acme: Tenant) -> None:
    client = browser_client_for(carol)
    assert client.get(acme_url("vm-create")).status_code == 403
    assert client.get(acme_url("vm-create"), headers=htmx("quota-preview")).status_code == 403
    refused = client.post(acme_url("vm-create"), form_values(name="sneaky"))
    assert refused.status_code == 403
    assert "Your role in this tenant is read-only." in refused.content.decode()
    assert not VirtualMachine.objects.exists()


# --- The detail page --------------------------------------------------------------------------


def test_an_importing_vm_shows_the_disk_progress_bar_and_its_timeline(
    bob: User, acme: Tenant
) -> None:
    vm = importing(create(acme, bob, "web"))
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    assert (
        '<span class="progress" role="progressbar" aria-label="Disk image imported" '
        'aria-valuemin="0" aria-valuemax="100" aria-valuenow="42.5">'
        '<span class="progress-bar" style="width: 42.5%"></span></span>'
    ) in text
    assert "Disk image 42.5% imported" in text
    assert timeline_steps(text) == [
        ("disk", "active"),
        ("scheduled", "pending"),
        ("running", "pending"),
        ("address", "pending"),
    ]
    assert "Importing the disk image: 42.50%." in text
    assert (
        '<span id="vm-state" class="badge badge-blue badge-title" data-state="provisioning">'
        '<span class="spinner" aria-hidden="true"></span>Provisioning</span>'
    ) in text


#: What Kubernetes said, one click away (components/raw_detail.html).
RAW_DETAIL = re.compile(r'<details class="raw-detail">.*?</details>', re.S)


def test_a_vm_kubevirt_cannot_place_says_so_in_plain_words_with_its_words_one_click_away(
    bob: User, acme: Tenant
) -> None:
    vm = create(acme, bob, "web")
    importing(vm)
    observe(
        vm,
        data_volume_obj("web", phase="Succeeded", progress="100.0%"),
        virtual_machine_obj(
            "web",
            printable="ErrorUnschedulable",
            ready=False,
            conditions=[
                condition(
                    "PodScheduled",
                    "False",
                    "Unschedulable",
                    "0/3 nodes are available: 3 Insufficient memory.",
                )
            ],
        ),
    )

    text = page_text(bob, acme_url("vm-detail", vm.pk))

    sentence = (
        "No node has enough free memory for it. Choose a smaller size, or ask the platform "
        "operators for room."
    )
    status_card = text[text.index('id="status-heading"') : text.index('id="timeline-heading"')]
    assert sentence in status_card
    assert "ErrorUnschedulable: 0/3 nodes are available: 3 Insufficient memory." in (
        "".join(RAW_DETAIL.findall(status_card))
    )
    # Outside the disclosures, no word of KubeVirt's: neither its status nor its message.
    shown = RAW_DETAIL.sub("", text)
    assert "ErrorUnschedulable" not in shown
    assert "nodes are available" not in shown
    assert re.search(r'data-step="scheduled" data-state="failed"', text)


def test_the_timeline_says_when_each_step_finished_and_how_long_it_took(
    bob: User, acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = [timezone.now()]
    monkeypatch.setattr("vms.status.timezone.now", lambda: moment[0])
    vm = importing(create(acme, bob, "web"))
    moment[0] += timedelta(seconds=90)
    make_running(vm)

    text = page_text(bob, acme_url("vm-detail", vm.pk))

    times = dict(
        re.findall(r'data-step="([\w-]+)".*?<p class="timeline-time">(.*?)</p>', text, re.S)
    )
    assert list(times) == ["disk", "scheduled", "running", "address"]
    assert all('<time datetime="' in each for each in times.values())
    assert "took 1 min 30 s" in times["disk"]


def test_a_running_vm_shows_its_facts_and_offers_what_a_running_vm_can_do(
    bob: User, acme: Tenant
) -> None:
    key = add_key(bob, "laptop")
    vm = make_running(create(acme, bob, "web", ssh_keys=[key]))
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    assert 'Running on node-1, at <span class="mono">10.200.1.14</span>' in text
    assert "progressbar" not in text
    facts = facts_of(text)
    assert facts["IP addresses"] == '<span class="mono">10.200.1.14</span>'
    assert facts["Root disk"] == "20 GiB"
    assert facts["Storage class"] == '<span class="mono">linstor</span>'
    assert key.fingerprint in facts["SSH keys"]
    assert "None: no port is exposed" in facts["Public address"]
    assert offered(text) == ["stop", "restart", "console", "expose", "delete"]
    console = action_row(text, "console")
    assert f'href="{acme_url("vm-console", vm.pk)}"' in console
    assert "hx-get" not in console  # a page of its own, not a dialog
    assert f'hx-get="{acme_url("vm-stop", vm.pk)}" hx-target="#modal-body"' in text


def test_a_stopped_vm_offers_start_and_no_console(bob: User, acme: Tenant) -> None:
    vm = stopped(create(acme, bob, "web"))
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    assert vm.state == VirtualMachine.State.STOPPED
    assert offered(text) == ["start", "expose", "delete"]
    assert acme_url("vm-console", vm.pk) not in text
    assert acme_url("vm-stop", vm.pk) not in text
    assert "Stopped: its disk and its quota are kept" in text


def test_a_vm_kubernetes_refused_offers_retry_first_then_deletion_and_stops_its_timeline(
    bob: User, acme: Tenant
) -> None:
    vm = create(acme, bob, "web")
    vm_fail(vm_id=vm.pk, reason="Kubernetes rejected VirtualMachine web: spec.template: bad")
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    assert "object-status-red" in text
    assert "Kubernetes rejected VirtualMachine web: spec.template: bad" in text
    assert offered(text) == ["retry", "delete"]
    retry = action_row(text, "retry")
    assert acme_url("vm-retry", vm.pk) in retry
    # Ports exposed before the failure went with it: the offer says they do not come back.
    assert "Exposed ports, if it had any, are not restored" in retry
    assert "timeline-pulse" not in text


def test_a_suspended_tenant_keeps_stop_console_and_delete_but_refuses_the_rest(
    bob: User, acme: Tenant
) -> None:
    vm = make_running(create(acme, bob, "web"))
    Tenant.objects.filter(pk=acme.pk).update(state=Tenant.State.SUSPENDED)
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    restart = action_row(text, "restart")
    assert '<div class="action-row is-disabled" aria-disabled="true"' in restart
    assert "Acme Corp is suspended: resources can only be given back" in restart
    assert acme_url("vm-restart", vm.pk) not in restart
    assert "is-disabled" in action_row(text, "expose")
    for action in ("stop", "console", "delete"):
        assert acme_url(f"vm-{action}", vm.pk) in action_row(text, action), action


def test_viewers_and_auditors_see_the_vm_without_any_control(
    bob: User, carol: User, audrey: User, acme: Tenant
) -> None:
    vm = make_running(create(acme, bob, "web"))
    for reader in (carol, audrey):
        text = page_text(reader, acme_url("vm-detail", vm.pk))
        assert offered(text) == [], reader
        for action in ("start", "stop", "restart", "console", "expose", "delete"):
            assert acme_url(f"vm-{action}", vm.pk) not in text
        assert "You have read-only access to Acme Corp" in text
        assert "10.200.1.14" in text


def test_exposed_ports_show_with_the_public_address_and_how_to_log_in(
    bob: User, acme: Tenant
) -> None:
    vm = make_running(create(acme, bob, "web"))
    vm_expose(actor=Actor(bob), vm=vm, ports=[PortSpec("TCP", 2222, 22), PortSpec("TCP", 80, 80)])
    waiting = page_text(bob, acme_url("vm-detail", vm.pk))
    assert '<div class="vm-service" data-service-state="pending">' in waiting
    assert '<span class="muted">Pending…</span>' in waiting
    observe(vm, service_obj("web", ip="192.0.2.20"))
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    facts = facts_of(text)
    public = facts["Public address"]
    assert '<span class="mono">192.0.2.20</span>' in public
    assert re.findall(r'<li class="mono">([^<]+)</li>', public) == ["80/TCP", "2222/TCP → 22"]
    assert "ssh -p 2222 ubuntu@192.0.2.20" in public
    assert offered(text) == ["stop", "restart", "console", "expose", "unexpose", "delete"]
    assert "Now 80/TCP, 2222/TCP on 192.0.2.20: add more." in action_row(text, "expose")
    listing = page_text(bob, acme_url("vm-list"))
    assert '<span class="mono">192.0.2.20</span>' in row_of(listing, f"vm-row-{vm.pk}")


def test_the_panel_reloads_for_this_vms_events_only(bob: User, carol: User, acme: Tenant) -> None:
    vm = create(acme, bob, "web")
    text = page_text(carol, acme_url("vm-detail", vm.pk))
    assert (
        f'<div id="vm-panel" class="object-panel" hx-get="{acme_url("vm-detail", vm.pk)}" '
        f'hx-trigger="portal:vm.changed[detail.id=={vm.pk}] from:body, portal:resync from:body" '
        'hx-swap="innerHTML" hx-sync="this:queue last">'
    ) in text
    make_running(vm)
    panel = page_text(carol, acme_url("vm-detail", vm.pk), **htmx("vm-panel"))
    assert "<html" not in panel
    assert panel.lstrip().startswith(
        '<span id="vm-state" hx-swap-oob="true" class="badge badge-green badge-title" '
        'data-state="running">Running</span>'
    )
    assert 'data-step="address" data-state="done"' in panel


def test_after_deletion_the_open_page_says_the_vm_is_gone(
    bob: User, carol: User, acme: Tenant
) -> None:
    vm = create(acme, bob, "web")
    url = acme_url("vm-detail", vm.pk)
    assert vm_delete(actor=Actor(bob), vm=vm, confirm_name="web")  # gone at once: no k8s

    panel = browser_client_for(carol).get(url, headers=htmx("vm-panel"))
    text = panel.content.decode()
    assert panel.status_code == 200
    assert 'data-gone="true"' in text
    assert "This virtual machine is gone" in text
    assert f'href="{acme_url("vm-list")}">Back to virtual machines</a>' in text
    assert (
        '<span id="vm-state" hx-swap-oob="true" class="badge badge-grey badge-title" '
        'data-state="deleted">Deleted</span>'
    ) in text
    assert browser_client_for(carol).get(url).status_code == 404


def test_the_action_log_tells_who_did_what_in_words(bob: User, acme: Tenant) -> None:
    vm = make_running(create(acme, bob, "web"))
    vm_stop(actor=Actor(bob), vm=vm)
    text = page_text(bob, acme_url("vm-detail", vm.pk))
    assert activity_of(text) == [
        ("stop", "bob", "stopped it"),
        ("create", "bob", "requested the virtual machine"),
    ]
    assert "<div><dt>run strategy</dt><dd>Always → Halted</dd></div>" in text

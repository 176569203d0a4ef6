"""The user's SSH keys in the browser portal (``/account/ssh-keys/``): listing, adding with
the key's problems on its field, removing with a confirmation; nobody else's key is visible.
"""

from __future__ import annotations

import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse

from tenants.models import AuditEvent, User
from tests.conftest import browser_client_for
from tests.ui.conftest import errors_of, htmx
from tests.vms.conftest import add_key, public_key_line
from vms.models import SSHKey


def page_text(user: User, url: str, **headers: str) -> str:
    response = browser_client_for(user).get(url, headers=headers)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def short_rsa_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    data = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{data.decode()} old@box"


def test_the_page_lists_ones_own_keys_only(bob: User, carol: User, nobody: User) -> None:
    laptop = add_key(bob, "laptop")
    add_key(carol, "carols")
    text = page_text(bob, reverse("ssh-key-list"))
    rows = re.findall(
        r'<tr id="ssh-key-(\d+)">.*?<span class="cell-main">([^<]+)</span>', text, re.S
    )
    assert rows == [(str(laptop.pk), "laptop")]
    assert laptop.fingerprint in text
    assert 'ssh-ed25519<span class="cell-sub">256 bits</span>' in text
    assert "carols" not in text
    assert f'hx-get="{reverse("ssh-key-delete", args=[laptop.pk])}" hx-target="#modal-body"' in text
    assert "No SSH keys yet" in page_text(nobody, reverse("ssh-key-list"))


def test_the_user_menu_and_the_side_navigation_link_to_the_keys(nobody: User) -> None:
    text = page_text(nobody, reverse("home"))
    assert f'<a class="menu-item" href="{reverse("ssh-key-list")}">' in text
    assert f'<a class="nav-link" href="{reverse("ssh-key-list")}">' in text
    on_the_page = page_text(nobody, reverse("ssh-key-list"))
    assert (
        f'<a class="nav-link" href="{reverse("ssh-key-list")}" aria-current="page">' in on_the_page
    )


def test_adding_a_key_stores_it_and_reloads_the_list(bob: User) -> None:
    line = public_key_line("bob@laptop")
    client = browser_client_for(bob)
    response = client.post(
        reverse("ssh-key-create"),
        {"name": "laptop", "public_key": f"  {line}\n"},
        headers=htmx("ssh-key-create"),
    )
    key = SSHKey.objects.get(user=bob)
    assert (key.name, key.public_key, key.key_type) == ("laptop", line, "ssh-ed25519")
    text = response.content.decode()
    assert response["HX-Trigger"] == '{"ssh-keys-changed": {}}'
    assert f"SSH key “laptop” was added ({key.fingerprint})." in text
    assert 'name="name" value="laptop"' not in text  # a fresh form for the next key
    assert AuditEvent.objects.filter(action="create", object_type="sshkey", actor=bob).exists()

    listing = client.get(reverse("ssh-key-list"), headers=htmx("ssh-key-list")).content.decode()
    assert listing.lstrip().startswith('<section id="ssh-key-list"')
    assert key.fingerprint in listing

    plain = client.post(
        reverse("ssh-key-create"), {"name": "desktop", "public_key": public_key_line()}
    )
    assert plain["Location"] == reverse("ssh-key-list")
    assert SSHKey.objects.filter(user=bob).count() == 2


def test_an_invalid_key_is_refused_on_its_field_with_what_was_typed(bob: User) -> None:
    client = browser_client_for(bob)
    cases = {
        "not a key": (
            "Not an OpenSSH public key: it must start with its type, one of ssh-ed25519, "
            "ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, ssh-rsa, "
            "sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com (options such as "
            "from= or command= are not accepted)."
        ),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----": (
            "This is a private key: never share it. Paste the public key (the .pub file)."
        ),
        short_rsa_key(): (
            "This RSA key has 1024 bits; use at least 2048, or better an Ed25519 key "
            "(ssh-keygen -t ed25519)."
        ),
    }
    for pasted, refusal in cases.items():
        response = client.post(
            reverse("ssh-key-create"),
            {"name": "laptop", "public_key": pasted},
            headers=htmx("ssh-key-create"),
        )
        text = response.content.decode()
        assert errors_of(text) == {"public_key": [refusal]}, pasted
        assert 'name="name" value="laptop"' in text
        assert "HX-Trigger" not in response
    assert not SSHKey.objects.exists()


def test_a_second_key_with_the_same_name_or_the_same_key_is_refused(bob: User) -> None:
    first = add_key(bob, "laptop")
    client = browser_client_for(bob)
    same_name = client.post(
        reverse("ssh-key-create"), {"name": "laptop", "public_key": public_key_line()}
    ).content.decode()
    assert errors_of(same_name) == {"name": ["You already have a key named laptop."]}
    same_key = client.post(
        reverse("ssh-key-create"), {"name": "again", "public_key": first.public_key}
    ).content.decode()
    assert errors_of(same_key) == {"public_key": ["You added this key already, as laptop."]}
    assert SSHKey.objects.count() == 1


def test_removing_a_key_asks_first_and_leaves_vms_alone(bob: User) -> None:
    key = add_key(bob, "laptop")
    client = browser_client_for(bob)
    url = reverse("ssh-key-delete", args=[key.pk])
    dialog = client.get(url, headers=htmx("modal-body")).content.decode()
    assert "<html" not in dialog
    assert '<h2 id="modal-title">Remove the SSH key “laptop”?</h2>' in dialog
    assert "Those created with it keep it" in dialog
    assert SSHKey.objects.filter(pk=key.pk).exists()

    response = client.post(url, headers=htmx("modal-body"))
    assert response["HX-Redirect"] == reverse("ssh-key-list")
    assert not SSHKey.objects.filter(pk=key.pk).exists()
    assert AuditEvent.objects.filter(action="delete", object_type="sshkey", actor=bob).exists()


def test_nobody_sees_or_removes_someone_elses_key(bob: User, carol: User, oscar: User) -> None:
    key = add_key(bob, "laptop")
    url = reverse("ssh-key-delete", args=[key.pk])
    for other in (carol, oscar):
        client = browser_client_for(other)
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
        assert key.fingerprint not in page_text(other, reverse("ssh-key-list"))
    assert SSHKey.objects.filter(pk=key.pk).exists()

"""SSH public keys: what is accepted, what is refused and why, and fingerprints as ssh-keygen
shows them (the expected lines were printed by ``ssh-keygen -lf`` for these very keys)."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ValidationError

from tenants.audit import Actor
from tenants.models import AuditEvent, User
from vms.services import ssh_key_create, ssh_key_delete, ssh_key_rename
from vms.sshkeys import parse_public_key

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA4hsobY226PmisaZYUxAvug0OkaODsF9pmMXXGaEvjy user@ed25519"
)
ECDSA_256 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCiU7TftM2M81Mu0yCzET48P+m3OQtazEFIOP09bbXtZRNUJeG1H8T1NuM6+6kYnGFH+2kvuWg3pIMxDwu4vwAc= user@ecdsab256"
ECDSA_384 = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBMtCdQaVF8oWheVWy0wpGbYk06QzEmDwzZ8grPY7rzxP7rcsv5ym7G3rb2AEONKFpyU5/9Dtqnt5Wt7e4AMNCShjBXb4Tg5Aiuat418enzF2RDvjE3e8dCD8Vn2SFLz++w== user@ecdsab384"
ECDSA_521 = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBACl1IWXfjlt7Ei0MU3E4rNMy5s+kgyKrbPCCEUzcrejzOg9XeparU0sJgOk0fv0s+bBVFbeRTvWr8KNNpDh2BonBQAgF+HQp7zu9GQPKrNTtPI1OiXH2FW5yLB/ktqP7d1482L47HVAAiUoMp6Cf5UatizrTvEvR6mLMVAZFwrYtrAVbw== user@ecdsab521"
RSA_2048 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC51c3uTuyQlvOXTA33hyqIirZvLO73ubrkRci7QCZk9wTposjPF2xNAFebr5n3TDrtwYfWwkqLXVJ+rJkUe6AcZewYIiaDh/xfF0LM9ofPNnODC6CONF3ElS5oIL9bxOLMUvBAJ4Mtf15J7fNfazHHNYvVpWOiHjBKyHCVzgW2BvLfitibUXOXwbMuqxCnsve5cxsh7sm4KaPvRWRdYTPCIWKEsDTjeDmu1FTt9V87TIXoEKwh0Ie8At7B5V13GSBnRW9l3cz6jYJycQm4kA1VKS/S3lQfY9amjz9nSMBvn/uZ/JZ3qKn8jscL7NIYfdOs4l8cVVaxeeVadbWaaeNF user@rsab2048"
RSA_4096 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAACAQCp4kamR8wFqwzLXF1fRhM8kSio84rM8cZCIwgkyjzUDI82J5AVF/NeaIkgFXJ5cISVO1TI0ycoygPbH5tMKFMNhWicbans5SzHfn/mCb2Y4LtVAp0eRuetqABS6G0pWAZ/R3maSF2p5t2WF62I/SvDFG0A1AbXSuU4xuuSKUDDSVvgkjHYrq5PVwdB4AGYyK7mkrJ+n9ceifRkKpJK1GPOxZ7g43PCgN9mHRb5LMnN0nuV1l3hFqWoZTIo87aZb83YxPkrHQy2eTYLek1oxBl09BXfW86Lpd0JSL8mk3zljfjfkrMqAh/AiNrZziN7w+mW4f+k5dD6gbgNoPERf5qVoQgGjhQgJy250VMfS5QVrJm0j6GnsQFPv53p1Bj9VcWDCJ6R1K7iH3JMlsHfo+SRTqhp1m/AkVOuxbRM/BzXHKq/UfCcH6RwE4zE5ASqVWZXm+gflPw2tcoIFesXA0eg57n1pp+ZklrkOKdwbTXS2Sy5aahAKnIsViUvvgF/Dli7HJg1fVBRVcoXM6hNfSBG8C+cQl3bXmXgrBxWoCXAuFhyw1rfuK6fpSsPjQWH0a+TKXXbdRXbL33iSKfdjBK8Ss5Ptm2b+5Kfyp0cEAEoZt4eAJN0jfL1Z1DM8Q3TExeCwSqS7thy16MuoZBct8cF9mrBckzTJYiEk+nXqLUDbQ== user@rsab4096"
RSA_1024 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCpmIBMtPRxIR8r4XE4x5WKR0lQbphac/cOrwtjmWeIrt6bxeTDnaq+J1h4nouy9TvFjyHSsTn3AJoSDMA4YtBBCWeCKW09MkSayFVaQGvOgT/G5PLc79JNUZXRZLNTY11nJSPKVcW9Ezny1psWe8XzJuHPvKlJzdMV4vjjbUonOw== user@rsab1024"
SK_ED25519 = "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIA4hsobY226PmisaZYUxAvug0OkaODsF9pmMXXGaEvjyAAAABHNzaDo= yubikey"

# What `ssh-keygen -lf <key>.pub` printed for each.
SSH_KEYGEN_SAYS = {
    ED25519: "256 SHA256:Q76x2t4o+v93+14Lc5VOtd66ssUYEk0mExJkqHdulVI user@ed25519 (ED25519)",
    ECDSA_256: "256 SHA256:yxVSiShfN9liTFEyk3e7DG7Zcx99sWbjm/8SKT+lDPI user@ecdsab256 (ECDSA)",
    ECDSA_384: "384 SHA256:DaLQLaFEE+FDkDGF0dvitSHSBD1tIEK47BGxfkx1LS4 user@ecdsab384 (ECDSA)",
    ECDSA_521: "521 SHA256:171TzRQs5sVCCfq3cLsDJLx0es5QOZlAUvbTGtGF4aU user@ecdsab521 (ECDSA)",
    RSA_2048: "2048 SHA256:2ilRzzMz/b0ZM0yXhpk+MtJipHdf6abWYEofad16wgU user@rsab2048 (RSA)",
    RSA_4096: "4096 SHA256:sLey4953/3Av/e24F74a1dDGINlUmUCPK4OqWAN891g user@rsab4096 (RSA)",
    SK_ED25519: "256 SHA256:b9ZX433qv9ThY/bvIY2JHTY7wIVjypzP9a1sWeRdS1Y yubikey (ED25519-SK)",
}


@pytest.mark.parametrize("line", list(SSH_KEYGEN_SAYS), ids=lambda line: line.split()[-1])
def test_accepted_keys_are_described_as_ssh_keygen_does(line: str) -> None:
    key = parse_public_key(f"  {line}\n")

    assert key.describe() == SSH_KEYGEN_SAYS[line]
    assert key.line == line


def test_a_key_without_comment_is_fine() -> None:
    key = parse_public_key(" ".join(ED25519.split()[:2]))

    assert (key.comment, key.line) == ("", " ".join(ED25519.split()[:2]))


def _data(line: str) -> str:
    return line.split()[1]


REFUSED = {
    "empty": ("   ", "Paste an OpenSSH public key"),
    "rsa-1024": (RSA_1024, "This RSA key has 1024 bits; use at least 2048"),
    "private key": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "This is a private key",
    ),
    "two keys": (f"{ED25519}\n{RSA_2048}", "Paste one key, on one line"),
    "options": (f'from="10.0.0.1" {ED25519}', "Not an OpenSSH public key"),
    "dsa": ("ssh-dss AAAAB3NzaC1kc3MAAACBAP== old", "Not an OpenSSH public key"),
    "no data": ("ssh-ed25519", "The key data is missing"),
    "not base64": ("ssh-ed25519 AAAA$$$$ me", "not valid base64"),
    "type mismatch": (f"ssh-rsa {_data(ED25519)} me", "the key data is a ssh-ed25519 key"),
    "cut short": (f"ssh-ed25519 {_data(ED25519)[:-8]}", "corrupt or incomplete"),
    "bad padding": (f"ssh-ed25519 {_data(ED25519)[:-7]}", "not valid base64"),
    "corrupt": (
        "ssh-ed25519 " + base64.b64encode(base64.b64decode(_data(ED25519)) + b"extra").decode(),
        "The key data is corrupt or incomplete",
    ),
}


@pytest.mark.parametrize(("text", "message"), list(REFUSED.values()), ids=list(REFUSED))
def test_refused_keys_say_why_on_the_public_key_field(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_public_key(text)

    assert list(refused.value.message_dict) == ["public_key"]
    assert message in refused.value.message_dict["public_key"][0]


def test_adding_keys_stores_the_fingerprint_and_refuses_duplicates(db: None) -> None:
    user = User.objects.create(username="kim")
    other = User.objects.create(username="lee")
    actor = Actor(user)

    key = ssh_key_create(actor=actor, name="laptop", public_key=f"  {RSA_2048}  ")

    assert (key.key_type, key.bits, key.fingerprint) == (
        "ssh-rsa",
        2048,
        "SHA256:2ilRzzMz/b0ZM0yXhpk+MtJipHdf6abWYEofad16wgU",
    )
    assert key.public_key == RSA_2048
    with pytest.raises(ValidationError) as again:
        ssh_key_create(actor=actor, name="laptop", public_key=RSA_2048)
    assert again.value.message_dict == {
        "name": ["You already have a key named laptop."],
        "public_key": ["You added this key already, as laptop."],
    }
    # Someone else may register the same key (a shared deploy key, say).
    assert ssh_key_create(actor=Actor(other), name="laptop", public_key=RSA_2048).pk != key.pk
    event = AuditEvent.objects.get(object_type="sshkey", actor=user)
    assert event.changes["fingerprint"] == key.fingerprint


def test_renaming_and_deleting_are_audited(db: None) -> None:
    user = User.objects.create(username="kim")
    actor = Actor(user)
    first = ssh_key_create(actor=actor, name="laptop", public_key=ED25519)
    ssh_key_create(actor=actor, name="desktop", public_key=ECDSA_256)

    with pytest.raises(ValidationError) as clash:
        ssh_key_rename(actor=actor, key=first, name="desktop")
    ssh_key_rename(actor=actor, key=first, name="old laptop")
    ssh_key_delete(actor=actor, key=first)

    assert clash.value.message_dict == {"name": ["You already have a key named desktop."]}
    assert list(
        AuditEvent.objects.filter(object_type="sshkey")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["create", "create", "update", "delete"]

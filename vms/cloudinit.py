"""Cloud-init for portal VMs: checking a tenant's user data and merging the portal's part in.

A VM boots with a NoCloud data source whose user data comes from a Secret (the VM spec
only names it, in ``cloudInitNoCloud.secretRef``). The Secret holds one ``#cloud-config``
document: the VM's hostname, the image's login user and the chosen SSH keys, merged with
whatever cloud-config the tenant wrote. Keeping it in a Secret keeps credentials a tenant may put in
its user data out of the VM object (which many more people and tools read), and lifts
KubeVirt's 2,048-byte limit on inline user data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from django.conf import settings
from django.core.exceptions import ValidationError

CLOUD_CONFIG_HEADER = "#cloud-config"
SSH_KEYS_KEY = "ssh_authorized_keys"


def _refuse(message: str) -> ValidationError:
    return ValidationError({"user_data": message}, code="invalid_user_data")


def parse_user_data(text: str, *, check_size: bool = True) -> dict[str, Any]:
    """The tenant's cloud-config as a mapping ({} for none), or a ValidationError on
    ``user_data`` that says what is wrong and where."""
    limit = settings.VM_USER_DATA_MAX_BYTES
    size = len(text.encode())
    if check_size and size > limit:
        raise _refuse(f"User data is {size:,} bytes; at most {limit:,} bytes are accepted.")
    if not text.strip():
        return {}
    if text.lstrip().startswith("#!"):
        raise _refuse(
            "Shell scripts are not accepted: write #cloud-config and put the commands under "
            "runcmd:."
        )
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise _refuse(f"Not valid YAML{where}: {problem}.") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise _refuse(
            "User data must be a #cloud-config mapping, with keys such as packages:, "
            "write_files: or runcmd:."
        )
    keys = parsed.get(SSH_KEYS_KEY)
    if keys is not None and not (
        isinstance(keys, list) and all(isinstance(key, str) for key in keys)
    ):
        raise _refuse(f"{SSH_KEYS_KEY} must be a list of public keys.")
    return {str(key): value for key, value in parsed.items()}


def render_user_data(
    *,
    hostname: str,
    login_user: str,
    authorized_keys: Sequence[str],
    user_data: Mapping[str, Any],
) -> str:
    """One ``#cloud-config`` document: the portal's settings, then the tenant's.

    The tenant's keys win, except ``ssh_authorized_keys``: the chosen SSH keys are added to
    any the tenant listed, never replaced by them.
    """
    merged: dict[str, Any] = {"hostname": hostname}
    if login_user:
        merged["user"] = login_user
    tenant_keys = list(user_data.get(SSH_KEYS_KEY) or [])
    keys = list(dict.fromkeys([*authorized_keys, *tenant_keys]))
    merged.update({key: value for key, value in user_data.items() if key != SSH_KEYS_KEY})
    if keys:
        merged[SSH_KEYS_KEY] = keys
    body = yaml.safe_dump(merged, sort_keys=False, default_flow_style=False, width=1_000_000)
    return f"{CLOUD_CONFIG_HEADER}\n{body}"

"""Typed errors of the Kubernetes adapter.

Callers branch on these types instead of HTTP codes: ``Transient`` is worth a retry, ``Invalid``
carries the API's field errors back to the user, ``Gone`` tells a watcher to re-list.
This module has no dependency on the Kubernetes client library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldCause:
    """One entry of ``Status.details.causes``: which field is wrong and why."""

    field: str
    message: str
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class KubeError(Exception):
    """An error answered by (or on the way to) the Kubernetes API."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        reason: str = "",
        causes: Sequence[FieldCause] = (),
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.reason = reason  # the API's machine-readable Status.reason, e.g. "AlreadyExists"
        self.causes = tuple(causes)
        self.retry_after_seconds = retry_after_seconds


class NotFound(KubeError):
    """404: the object, its namespace or its kind does not exist."""


class NotServed(NotFound):
    """The API server does not serve this kind at all: the component that provides it (its
    CRDs, or its aggregated API) is not installed, or not yet. Unlike a missing object this
    can go away by itself, so work that needs the kind waits and tries again."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"kind {kind} is not served by {api_version}", reason="NotFound")
        self.api_version = api_version
        self.kind = kind


class Conflict(KubeError):
    """409: stale resourceVersion on update, or the object already exists on create."""


class Invalid(KubeError):
    """422 (or a 400 with field causes): the object breaks its schema, a CEL rule or a policy."""

    @property
    def summary(self) -> str:
        """One readable line per offending field, for showing to a user."""
        if not self.causes:
            return self.message
        return "; ".join(str(cause) for cause in self.causes)


class Forbidden(KubeError):
    """403: RBAC (or an admission policy) denies the request."""


class Unauthorized(KubeError):
    """401: the credentials are missing, expired or unknown to the API server."""


class Transient(KubeError):
    """Timeouts, connection failures, 429 and 5xx: the same request may succeed later."""


class Gone(KubeError):
    """410: the requested resourceVersion was compacted away; list again, then watch."""


_ERROR_BY_STATUS_CODE: dict[int, type[KubeError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: Transient,
}


# Some rejections of what the client sent arrive without Status causes, described only in the
# message. They are permanent (retrying cannot help), so they become Invalid with causes parsed
# from the message:
# - server-side apply of a patch that does not fit the schema (wrong type, undeclared field,
#   duplicate list key) answers a bare 500 (kubernetes/kubernetes#139253; a fix proposes 400);
# - strict field validation on create/update answers 400 "strict decoding error: unknown
#   field "spec.x", duplicate field "spec.y"".
_TYPED_PATCH_ERROR = re.compile(
    r"^failed to create typed patch object \([^)]*\): (?P<detail>.*)", re.DOTALL
)
_TYPED_PATCH_CAUSE = re.compile(r"^\s*\.(?P<field>\S+?): (?P<message>.+)$", re.MULTILINE)
_STRICT_DECODING_CAUSE = re.compile(r'(?P<problem>unknown|duplicate) field "(?P<field>[^"]+)"')


def _causes_from_message(status_code: int, message: str) -> list[FieldCause] | None:
    """Field causes of a client error told only in the message, or None for any other error."""
    if status_code in (400, 500) and (typed_patch := _TYPED_PATCH_ERROR.match(message)):
        detail = typed_patch.group("detail")
        causes = [
            FieldCause(field=cause.group("field"), message=cause.group("message").strip())
            for cause in _TYPED_PATCH_CAUSE.finditer(detail)
        ]
        return causes or [FieldCause(field="", message=detail.strip())]
    if status_code == 400 and "strict decoding error" in message:
        return [
            FieldCause(field=cause.group("field"), message=f"{cause.group('problem')} field")
            for cause in _STRICT_DECODING_CAUSE.finditer(message)
        ] or [FieldCause(field="", message=message)]
    return None


def _field_path(field: object) -> str:
    # Go prints a cause without a field path as "<nil>".
    return "" if field in (None, "<nil>") else str(field)


def error_from_status(
    status_code: int, status: Mapping[str, Any], *, retry_after_seconds: float | None = None
) -> KubeError:
    """Build the typed error for a ``kind: Status`` failure body (HTTP error or watch ERROR)."""
    message = str(status.get("message") or status.get("reason") or f"HTTP {status_code}")
    details = status.get("details") or {}
    causes = [
        FieldCause(
            field=_field_path(cause.get("field")),
            message=str(cause.get("message", "")),
            reason=str(cause.get("reason", "")),
        )
        for cause in details.get("causes") or ()
    ]
    error_type: type[KubeError]
    if (causes_in_message := _causes_from_message(status_code, message)) is not None:
        error_type, causes = Invalid, causes_in_message
    elif status_code >= 500:
        error_type = Transient
    else:
        error_type = _ERROR_BY_STATUS_CODE.get(status_code, KubeError)
    return error_type(
        message,
        status_code=status_code,
        reason=str(status.get("reason", "")),
        causes=causes,
        retry_after_seconds=retry_after_seconds,
    )

"""``with_retries`` and the mapping from API Status to typed errors (no API server needed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from butler_portal.kube.adapter import with_retries
from butler_portal.kube.errors import Invalid, KubeError, Transient, error_from_status


def failing(times: int, error: KubeError, calls: list[int]) -> Callable[[], str]:
    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "done"

    return operation


def test_transient_errors_are_retried_until_success() -> None:
    calls: list[int] = []

    result = with_retries(failing(2, Transient("busy"), calls), attempts=3, backoff=0)

    assert (result, len(calls)) == ("done", 3)


def test_the_last_transient_error_propagates_when_attempts_run_out() -> None:
    calls: list[int] = []

    with pytest.raises(Transient):
        with_retries(failing(5, Transient("down"), calls), attempts=3, backoff=0)

    assert len(calls) == 3


def test_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    with pytest.raises(Invalid):
        with_retries(failing(1, Invalid("bad spec"), calls), attempts=3, backoff=0)

    assert len(calls) == 1


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (404, "NotFound"),
        (409, "Conflict"),
        (410, "Gone"),
        (422, "Invalid"),
        (429, "Transient"),
        (403, "Forbidden"),
        (401, "Unauthorized"),
        (500, "Transient"),
        (503, "Transient"),
    ],
)
def test_status_codes_map_to_typed_errors(status_code: int, expected: str) -> None:
    error = error_from_status(status_code, {"kind": "Status", "message": "m", "code": status_code})

    assert type(error).__name__ == expected
    assert error.status_code == status_code


def test_a_schema_rejected_apply_patch_is_invalid_despite_its_500() -> None:
    status = {
        "kind": "Status",
        "message": "failed to create typed patch object (ns/x; /v1, Kind=Pod): "
        '.spec.containers[name="a"].env: duplicate entries for key [name="foo"]',
        "code": 500,
    }

    error = error_from_status(500, status)

    assert isinstance(error, Invalid)
    assert error.summary == 'spec.containers[name="a"].env: duplicate entries for key [name="foo"]'


def test_strict_decoding_errors_are_invalid_with_one_cause_per_field() -> None:
    message = (
        'Subnet in version "v1" cannot be handled as a Subnet: strict decoding error: '
        'unknown field "spec.colour", duplicate field "spec.cidrBlock"'
    )

    error = error_from_status(400, {"kind": "Status", "message": message, "reason": "BadRequest"})

    assert isinstance(error, Invalid)
    assert error.summary == "spec.colour: unknown field; spec.cidrBlock: duplicate field"


def test_a_cause_without_field_path_has_an_empty_field() -> None:
    cause = {"reason": "FieldValueInvalid", "message": "rules not checked", "field": "<nil>"}
    status = {"kind": "Status", "message": "m", "details": {"causes": [cause]}}

    error = error_from_status(422, status)

    assert error.causes[0].field == ""
    assert str(error.causes[0]) == "rules not checked"


def test_field_causes_are_carried_and_summarised() -> None:
    status = {
        "kind": "Status",
        "message": 'Subnet.kubeovn.io "x" is invalid: ...',
        "reason": "Invalid",
        "details": {
            "causes": [
                {
                    "reason": "FieldValueTypeInvalid",
                    "message": "must be boolean",
                    "field": "spec.a",
                },
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.b"},
            ]
        },
        "code": 422,
    }

    error = error_from_status(422, status)

    assert isinstance(error, Invalid)
    assert [cause.field for cause in error.causes] == ["spec.a", "spec.b"]
    assert error.summary == "spec.a: must be boolean; spec.b: Required value"

"""Small pure helpers over Kubernetes objects as plain dicts (no API calls here)."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Ref:
    """Which object: what the work queue holds and what reconcilers look up."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Ref:
        metadata = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], metadata["name"], metadata.get("namespace"))

    @classmethod
    def owners_of(cls, obj: Mapping[str, Any]) -> list[Ref]:
        """The objects named by ``ownerReferences`` (always in the dependent's namespace)."""
        namespace = obj["metadata"].get("namespace")
        return [
            cls(owner["apiVersion"], owner["kind"], owner["name"], namespace)
            for owner in obj["metadata"].get("ownerReferences") or ()
        ]

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


def dig(obj: Mapping[str, Any] | None, *path: str | int, default: Any = None) -> Any:
    """``obj[a][b][c]``, or ``default`` as soon as a step is missing."""
    current: Any = obj
    for step in path:
        if isinstance(current, Mapping) and isinstance(step, str):
            current = current.get(step)
        elif (
            isinstance(current, Sequence)
            and isinstance(step, int)
            and -len(current) <= step < len(current)
        ):
            current = current[step]
        else:
            return default
        if current is None:
            return default
    return current


def contains(actual: Any, wanted: Any) -> bool:
    """Whether ``actual`` already holds everything ``wanted`` says (the server adds defaults,
    so more is fine): then applying ``wanted`` would change nothing."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            contains(actual.get(key), value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def name_of(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("uid") or "")


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def generation_of(obj: Mapping[str, Any]) -> int:
    return int(obj["metadata"].get("generation") or 1)


def has_labels(obj: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy a LabelSelector (``matchLabels`` and ``matchExpressions``)."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or ()
        satisfied = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(operator, False)
        if not satisfied:
            return False
    return True


def selector_string(match_labels: Mapping[str, str]) -> str:
    """``matchLabels`` as the label selector string a scale subresource reports."""
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    reference: dict[str, Any] = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if controller:
        reference |= {"controller": True, "blockOwnerDeletion": True}
    return reference


def is_owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    owner_uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences") or ())


def owner_named(obj: Mapping[str, Any], kind: str) -> str | None:
    """The name of the first owner of ``kind``, if any."""
    for reference in obj["metadata"].get("ownerReferences") or ():
        if reference.get("kind") == kind:
            return str(reference["name"])
    return None


def fingerprint(value: Any, length: int = 10) -> str:
    """A short stable hash of any JSON-able value (checksums, template hashes, names)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(seconds: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Conditions ----------------------------------------------------------------------------


def condition(
    type_: str, status: bool | None, reason: str, message: str = "", **extra: Any
) -> Manifest:
    """A condition as most controllers write it (``None`` status is ``Unknown``)."""
    text = "Unknown" if status is None else ("True" if status else "False")
    return {"type": type_, "status": text, "reason": reason, "message": message, **extra}


def merge_conditions(
    previous: Iterable[Mapping[str, Any]] | None,
    desired: Iterable[Manifest],
    *,
    stamp_fields: Sequence[str] = ("lastTransitionTime",),
) -> list[Manifest]:
    """``desired`` with timestamps: kept while a condition's status holds, ``now`` on change.

    Keeping them is what makes an unchanged status compare equal, so nothing is rewritten.
    ``stamp_fields`` are the timestamp fields the kind's conditions carry.
    """
    before = {each.get("type"): each for each in previous or ()}
    stamp = now()
    merged = []
    for entry in desired:
        old = before.get(entry["type"])
        unchanged = old is not None and old.get("status") == entry["status"]
        merged.append(
            {
                **entry,
                **{
                    name: (old.get(name) if unchanged and old and old.get(name) else stamp)
                    for name in stamp_fields
                },
            }
        )
    return merged


def condition_of(obj: Mapping[str, Any] | None, type_: str) -> Manifest:
    """The condition of ``type_`` in ``status.conditions`` ({} when there is none)."""
    for entry in dig(obj, "status", "conditions", default=()):
        if entry.get("type") == type_:
            return dict(entry)
    return {}


def condition_status(obj: Mapping[str, Any] | None, type_: str) -> str | None:
    """``"True"``/``"False"``/``"Unknown"`` of a condition in ``status.conditions``, or None."""
    return condition_of(obj, type_).get("status")


def is_true(obj: Mapping[str, Any] | None, type_: str) -> bool:
    return condition_status(obj, type_) == "True"

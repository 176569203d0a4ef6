"""The vendored CRDs and examples stay byte-for-byte the reference copy in ``../shared/crds``.

The portal reads only its own copy when it runs; this test is what keeps that copy honest.
Outside CI a checkout may have no reference beside it: then there is nothing to compare and
the test says so by skipping. In CI the reference is always there, so a missing one fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from butler_portal.kube.localcp import VENDORED_CRD_DIR, load_crds
from tests.fixtures import CRD_EXAMPLES_DIR

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "crds"


def files_under(root: Path, *, exclude_top: frozenset[str] = frozenset()) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and path.relative_to(root).parts[0] not in exclude_top
        and (path.suffix in {".yaml", ".md"})
    }


@pytest.fixture
def reference() -> Path:
    if not (REFERENCE / "SOURCES.md").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the reference CRDs are missing beside the repository ({REFERENCE})")
        pytest.skip("no reference CRDs beside this checkout to compare with")
    return REFERENCE


def test_the_vendored_crds_are_the_reference_ones(reference: Path) -> None:
    expected = files_under(reference, exclude_top=frozenset({"examples"}))
    vendored = files_under(VENDORED_CRD_DIR)

    assert sorted(vendored) == sorted(expected), "run scripts/sync-crds.sh"
    changed = [name for name in expected if vendored[name] != expected[name]]
    assert not changed, f"differ from the reference (run scripts/sync-crds.sh): {changed}"


def test_the_vendored_examples_are_the_reference_ones(reference: Path) -> None:
    expected = files_under(reference / "examples")
    vendored = files_under(CRD_EXAMPLES_DIR)

    assert vendored == expected, "run scripts/sync-crds.sh"


def test_all_44_upstream_crds_are_vendored_one_per_file() -> None:
    files = sorted(VENDORED_CRD_DIR.glob("*/*.yaml"))
    crds = load_crds(VENDORED_CRD_DIR)

    assert len(files) == 44
    assert len(crds) == 44
    assert (VENDORED_CRD_DIR / "SOURCES.md").is_file()

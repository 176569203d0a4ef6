#!/usr/bin/env bash
# Refresh the vendored upstream CRDs and their example objects from a reference copy
# (default: ../shared/crds beside the repository). The portal never reads that copy at run
# time; tests/kube/test_vendored_crds.py fails while the two differ.
#
#   scripts/sync-crds.sh [REFERENCE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir="${1:-../shared/crds}"
crds=butler_portal/kube/crds
examples=tests/fixtures/crd_examples

if [ ! -f "$source_dir/SOURCES.md" ]; then
  echo "sync-crds: $source_dir has no SOURCES.md; pass the reference crds folder" >&2
  exit 2
fi
rm -rf "$crds" "$examples"
mkdir -p "$crds" "$examples"
cp "$source_dir/SOURCES.md" "$source_dir/STATUS.md" "$crds/"
for group in "$source_dir"/*/; do
  name=$(basename "$group")
  [ "$name" = examples ] && continue
  mkdir -p "$crds/$name"
  cp "$group"*.yaml "$crds/$name/"
done
cp "$source_dir"/examples/*.yaml "$examples/"
echo "sync-crds: $(find "$crds" -name '*.yaml' | wc -l) CRDs, $(ls "$examples" | wc -l) examples"

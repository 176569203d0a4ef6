#!/usr/bin/env bash
# Build the portal's image from the Containerfile with buildah, on a machine that reaches
# Debian's packages but no container registry: the Debian 12 base is made here with
# mmdebstrap (cached as localhost/debian:bookworm-slim), then the Containerfile builds on it.
# Then it checks the image: it runs as user 10001, the processes' commands exist,
# `manage.py check --deploy` passes with production settings inside it, and the web process
# starts and serves its probe and its collected static files.
#
#   scripts/build-image.sh [TAG]         # default TAG: localhost/butler-portal:dev
#
# Needs root (buildah's chroot isolation and vfs storage: no user namespaces or overlay
# mounts required). Where a registry is reachable, `podman build -f Containerfile .` on the
# official debian:bookworm-slim does the same without this script.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-localhost/butler-portal:dev}"
base=localhost/debian:bookworm-slim
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
log() { echo "build-image: $*" >&2; }

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian's packages"
  apt-cache show buildah >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  log "making the base $base from Debian's packages (mmdebstrap, once)"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$scratch/rootfs.tar"
  container=$(buildah from scratch)
  buildah add --quiet "$container" "$scratch/rootfs.tar" / >/dev/null
  # The base trusts the certificate authorities this machine trusts, so a build behind a
  # TLS-inspecting proxy reaches the package registries (pip and npm bring their own CA
  # bundles and would otherwise ignore the system's).
  buildah copy --quiet "$container" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/build-host-ca.crt >/dev/null
  buildah config \
    --env PIP_CERT=/etc/ssl/certs/build-host-ca.crt \
    --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/build-host-ca.crt \
    --cmd /bin/bash "$container"
  buildah commit --quiet "$container" "$base" >/dev/null
  buildah rm "$container" >/dev/null
fi

log "building $tag"
started=$(date +%s)
buildah bud --quiet --layers --build-arg "BASE=$base" -f Containerfile -t "$tag" . >/dev/null
log "built in $(( $(date +%s) - started ))s"

log "checking $tag"
container=$(buildah from "$tag")
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
run() { buildah run --user 10001:10001 "$container" -- "$@"; }
[ "$(run id -u)" = 10001 ]
run sh -c 'command -v uvicorn celery butler-portal' >/dev/null
run env DEBUG=false SECRET_KEY="$(head -c 48 /dev/urandom | base64)" \
  ALLOWED_HOSTS=portal.example.com CSRF_TRUSTED_ORIGINS=https://portal.example.com \
  DATABASE_URL=postgres://butler@db.invalid:5432/butler REDIS_URL=redis://redis.invalid:6379/0 \
  DB_POOL_SIZE=10 python manage.py check --deploy --fail-level WARNING
# The web process starts from the image and serves its probe and its collected static
# files (no database needed for those); the container shares this machine's loopback.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run env DEBUG=false SECRET_KEY=image-check-only-0123456789-0123456789-0123456789 \
  ALLOWED_HOSTS=127.0.0.1 DATABASE_URL=postgres://butler@db.invalid:5432/butler \
  REDIS_URL=redis://redis.invalid:6379/0 KUBE_MODE=off \
  uvicorn butler_portal.asgi:application --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
web=$!
served() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port$1"; }
for _ in $(seq 60); do served /healthz 2>/dev/null && break; sleep 0.5; done
served /healthz && served /static/css/portal.css || { log "the web process did not serve"; exit 1; }
kill "$web" 2>/dev/null; pkill -f -- "--port $port" 2>/dev/null || true; wait "$web" 2>/dev/null || true

# Earlier builds' layers that no tag uses any more (the layer cache too: the next build
# starts afresh, about two minutes): storage stays bounded across runs.
buildah rmi --prune >/dev/null 2>&1 || true
log "ok: $tag, $(buildah images --format '{{.Size}}' "$tag" | head -n 1)"

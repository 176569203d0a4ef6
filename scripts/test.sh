#!/usr/bin/env bash
# The test suite, exactly as CI runs it: real Postgres and Redis on loopback (started if
# needed), the production channel layer, and every test — extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/test-services.sh start)"
export DEBUG=true  # test client over plain HTTP; security settings are checked by check-deploy
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key-not-for-production-0123456789}"
export CELERY_TASK_ALWAYS_EAGER=true
# Pooled Postgres connections, as the web process runs in production (README).
export DB_POOL_SIZE="${DB_POOL_SIZE:-20}"
# Tests that need Kubernetes point the portal at the session's local API server themselves.
export KUBE_MODE=off
# A database of its own per run, so parallel runs on one machine never collide.
export TEST_DATABASE_NAME="${TEST_DATABASE_NAME:-test_butler_portal_$$}"
export CHANNEL_LAYER_PREFIX="${CHANNEL_LAYER_PREFIX:-test$$}"
export BUTLER_TEST_ARTIFACTS="${BUTLER_TEST_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$BUTLER_TEST_ARTIFACTS"

# kube-apiserver and etcd: cached after the first run, which builds them (several minutes).
.venv/bin/python -m butler_portal.kube.localcp ensure-binaries
# helm (pinned) for the chart's checks in tests/deploy: built once from the Go module proxy.
.venv/bin/python -m butler_portal.kube.binaries helm

exec .venv/bin/pytest "$@"

#!/usr/bin/env bash
# The test suite, exactly as CI runs it: real Postgres and Redis on loopback (started if
# needed), the production channel layer, and every test — extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/test-services.sh start)"
export DEBUG=true  # test client over plain HTTP; security settings are checked by check-deploy
export SECRET_KEY="${SECRET_KEY:-test-only-secret-key-not-for-production-0123456789}"
export CELERY_TASK_ALWAYS_EAGER=true
export BUTLER_TEST_ARTIFACTS="${BUTLER_TEST_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$BUTLER_TEST_ARTIFACTS"

exec .venv/bin/pytest "$@"

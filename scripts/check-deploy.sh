#!/usr/bin/env bash
# `manage.py check --deploy` with the production configuration: DEBUG off, a real secret,
# Postgres and Redis URLs. Nothing connects to them; the check only reads settings.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBUG=false \
SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
ALLOWED_HOSTS=portal.example.com \
CSRF_TRUSTED_ORIGINS=https://portal.example.com \
DATABASE_URL=postgres://butler@db.invalid:5432/butler \
DB_POOL_SIZE=10 \
REDIS_URL=redis://redis.invalid:6379/0 \
  .venv/bin/python manage.py check --deploy --fail-level WARNING

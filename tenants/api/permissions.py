from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.models import ApiToken


class TokenScopePermission(BasePermission):
    """A read-only token may only read, whatever its user's roles allow."""

    message = "This API token is read-only."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if isinstance(token, ApiToken) and request.method not in SAFE_METHODS:
            return token.allows_writes
        return True

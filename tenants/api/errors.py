"""One error shape for the whole API.

Django ``ValidationError``s raised by services become the same structured 400 that
serializer errors produce: ``{"field": ["message", ...], "non_field_errors": [...]}``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler


def as_api_error(error: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        detail = {
            (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
            for field, messages in error.message_dict.items()
        }
        return exceptions.ValidationError(detail)
    return exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: error.messages})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = as_api_error(exc)
    return drf_exception_handler(exc, context)

"""Drift in the API: the portal's records against the management cluster (the operator
console's Drift page), and applying again what is missing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from butler_portal.watcher.drift import DriftReport
from tenants.api.base import PlatformReaders
from tenants.audit import Actor
from tenants.selectors import ManagementClusterUnavailable, drift_now
from tenants.services import drift_repair

if TYPE_CHECKING:
    from rest_framework.permissions import _SupportsHasPermission


class ClusterUnavailable(APIException):
    status_code = 503
    default_code = "management_cluster_unavailable"
    default_detail = "The management cluster is not available."


class MissingSerializer(serializers.Serializer[Any]):
    check = serializers.CharField(help_text="The drift check that found it.")
    owner = serializers.CharField(help_text='Whose objects are missing, e.g. "tenant acme".')
    objects = serializers.ListField(
        child=serializers.CharField(), help_text='Each as "Kind.apiVersion namespace/name".'
    )


class OrphanSerializer(serializers.Serializer[Any]):
    check = serializers.CharField()
    object = serializers.CharField(help_text='"Kind.apiVersion namespace/name".')
    reason = serializers.CharField()


class DriftReportSerializer(serializers.Serializer[DriftReport]):
    checked_at = serializers.DateTimeField()
    clean = serializers.BooleanField(help_text="Nothing missing and no orphans.")
    missing = MissingSerializer(many=True)
    orphans = OrphanSerializer(many=True)


def _answer(compare: Callable[[], DriftReport]) -> Response:
    try:
        report = compare()
    except ManagementClusterUnavailable as error:
        raise ClusterUnavailable(str(error)) from error
    return Response(DriftReportSerializer(report).data)


class DriftView(APIView):
    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), PlatformReaders()]

    @extend_schema(
        responses=DriftReportSerializer,
        summary="Drift: objects missing from the management cluster, and orphans (operators, auditors)",
    )
    def get(self, request: Request) -> Response:
        return _answer(drift_now)


class DriftRepairView(APIView):
    def get_permissions(self) -> Sequence[_SupportsHasPermission]:
        return [*super().get_permissions(), PlatformReaders()]

    @extend_schema(
        request=None,
        responses=DriftReportSerializer,
        summary="Apply again now what is missing; orphans are only reported (operators)",
    )
    def post(self, request: Request) -> Response:
        return _answer(lambda: drift_repair(actor=Actor.from_request(request)))

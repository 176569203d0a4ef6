"""Query-string filters of the cluster list; they narrow what ``for_user`` already scoped."""

from __future__ import annotations

import django_filters

from clusters.models import Cluster
from tenants.api.filters import tenant_slug_filter


class ClusterFilterSet(django_filters.FilterSet):  # type: ignore[misc]  # django-filter is untyped
    tenant = tenant_slug_filter()
    phase = django_filters.MultipleChoiceFilter(choices=Cluster.Phase.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name.")

    class Meta:
        model = Cluster
        fields = ["tenant", "phase", "name"]

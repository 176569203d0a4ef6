"""Query-string filters of the VM list; they narrow what ``for_user`` already scoped."""

from __future__ import annotations

import django_filters

from tenants.api.filters import tenant_slug_filter
from vms.models import VirtualMachine


class VirtualMachineFilterSet(django_filters.FilterSet):  # type: ignore[misc]  # django-filter is untyped
    tenant = tenant_slug_filter()
    state = django_filters.MultipleChoiceFilter(choices=VirtualMachine.State.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name.")
    image = django_filters.CharFilter(field_name="image__name", help_text="Image name.")

    class Meta:
        model = VirtualMachine
        fields = ["tenant", "state", "name", "image"]

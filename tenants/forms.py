"""Browser forms. They check shape (types, lengths, required fields) and nothing more:
every business rule lives in ``tenants.services``, whose errors the views put back onto
these forms field by field.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils import timezone

from tenants.access import TenantRole
from tenants.models import DNS_LABEL_MESSAGE, ApiToken, QuotaResource, dns_label_validator
from tenants.selectors import QuotaUsage

MIB_PER_GIB = 1024


class InvitationForm(forms.Form):
    role = forms.ChoiceField(choices=TenantRole.choices, initial=TenantRole.MEMBER)
    email = forms.EmailField(
        required=False,
        label="Email (optional)",
        help_text="Only for your records, unless the portal is set up to send email.",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}),
    )


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=TenantRole.choices)


class SignUpForm(forms.Form):
    """A local account created on an invitation's landing page."""

    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        strip=False,
        help_text="At least 8 characters; not a common password and not all digits.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        help_text="What uses it, e.g. “CI pipeline” or “terraform on my laptop”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        widget=forms.RadioSelect,
        label="Access",
    )
    # Named like the service argument so the service's errors land on this field.
    expires_at = forms.DateField(
        required=False,
        label="Expires on (optional)",
        help_text="The token stops working at the end of this day (UTC). Leave empty for no expiry.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def expiry_moment(self) -> datetime | None:
        """The end of the chosen day, as an aware datetime in the portal's time zone."""
        day: date | None = self.cleaned_data.get("expires_at")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.max.replace(microsecond=0)))


class AuditFilterForm(forms.Form):
    """Filters of the audit log, read from GET parameters (shared by the page and the CSV)."""

    tenant = forms.ChoiceField(required=False)
    actor = forms.CharField(
        required=False, max_length=150, widget=forms.TextInput(attrs={"placeholder": "username"})
    )
    object_type = forms.ChoiceField(required=False, label="Object")
    action = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def __init__(
        self,
        data: Any,
        *,
        tenant_slugs: list[str],
        object_types: list[str],
        actions: list[str],
    ) -> None:
        super().__init__(data)
        self.fields["tenant"].choices = _any_of(tenant_slugs, "All tenants")  # type: ignore[attr-defined]
        self.fields["object_type"].choices = _any_of(object_types, "All objects")  # type: ignore[attr-defined]
        self.fields["action"].choices = _any_of(actions, "All actions")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    @property
    def active_filters(self) -> dict[str, Any]:
        """The filters that narrow the list (empty values dropped); valid forms only."""
        return {key: value for key, value in self.cleaned_data.items() if value}


def _any_of(values: list[str], everything: str) -> list[tuple[str, str]]:
    return [("", everything), *((value, value.replace("_", " ")) for value in values)]


class QuotaFieldsForm(forms.Form):
    """One number per quota resource; memory is entered in GiB and kept in MiB.

    ``usage`` (when given) puts each resource's current use under its input, so an
    operator sees what a new limit compares with.
    """

    def __init__(self, *args: Any, usage: list[QuotaUsage] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        in_use = {item.resource: item for item in usage or []}
        for resource, label in QuotaResource.choices:
            field: forms.Field
            if resource == QuotaResource.MEMORY_MIB:
                field = forms.DecimalField(
                    label=f"{label} (GiB)",
                    min_value=Decimal(0),
                    max_digits=9,
                    decimal_places=2,
                    widget=forms.NumberInput(attrs={"step": "0.25"}),
                )
            else:
                unit = " (GiB)" if resource == QuotaResource.STORAGE_GIB else ""
                field = forms.IntegerField(label=f"{label}{unit}", min_value=0)
            if resource in in_use:
                field.help_text = f"In use: {in_use[resource].used_display}"
            self.fields[resource] = field
        # Initial values arrive in the model's units; show memory in GiB.
        if QuotaResource.MEMORY_MIB in self.initial:
            self.initial[QuotaResource.MEMORY_MIB] = _mib_to_gib(
                self.initial[QuotaResource.MEMORY_MIB]
            )

    def clean_memory_mib(self) -> int:
        gib: Decimal = self.cleaned_data[QuotaResource.MEMORY_MIB]
        return round(gib * MIB_PER_GIB)

    def limits(self) -> dict[str, int]:
        return {resource: self.cleaned_data[resource] for resource in QuotaResource.values}

    def quota_fields(self) -> list[forms.BoundField]:
        return [self[resource] for resource in QuotaResource.values]


def _mib_to_gib(mib: int) -> Decimal:
    return (Decimal(mib) / MIB_PER_GIB).quantize(Decimal("0.01")).normalize()


class TenantCreateForm(QuotaFieldsForm):
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    slug = forms.CharField(
        max_length=40,
        validators=[dns_label_validator],
        help_text=f"Names the tenant's Kubernetes namespace. {DNS_LABEL_MESSAGE}",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    field_order = ["name", "slug"]


class QuotaForm(QuotaFieldsForm):
    force = forms.BooleanField(
        required=False,
        label="Set these limits even though they are below current usage",
        help_text="Running resources are kept; nothing new fits until usage drops.",
    )

    def __init__(self, *args: Any, offer_force: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The checkbox appears only after the service refused a limit below usage: an
        # operator confirms a reduction knowingly, never by habit.
        self.offer_force = offer_force or bool(self.data.get("force"))


class TypedConfirmationForm(forms.Form):
    """Asks the user to type a name before a destructive action (GitHub-style)."""

    confirmation = forms.CharField(
        max_length=200,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected
        self.fields["confirmation"].label = f"Type “{expected}” to confirm"

    def clean_confirmation(self) -> str:
        typed: str = self.cleaned_data["confirmation"].strip()
        if typed != self.expected:
            raise forms.ValidationError(f"Type “{self.expected}” exactly to confirm.")
        return typed


class PlainConfirmationForm(forms.Form):
    """A confirmation that needs nothing but the button (and the CSRF token)."""


class ListSearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Search…", "autocomplete": "off"}),
    )

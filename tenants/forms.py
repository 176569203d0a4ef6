"""Browser forms. They check shape (types, lengths, required fields) and nothing more:
every business rule lives in ``tenants.services``, whose errors the views put back onto
these forms field by field.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.utils import timezone

from tenants.access import TenantRole
from tenants.models import DNS_LABEL_MESSAGE, ApiToken, QuotaResource, dns_label_validator
from tenants.selectors import QuotaUsage

MIB_PER_GIB = 1024

#: Inputs for names and keys: no autocompletion, capitals or spelling corrections.
TEXT_INPUT_ATTRS = {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}


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
        widget=forms.TextInput(attrs=TEXT_INPUT_ATTRS),
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

    confirmation = forms.CharField(max_length=200, widget=forms.TextInput(attrs=TEXT_INPUT_ATTRS))

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


# --- Forms about a tenant's things (clusters, virtual machines) ------------------------------

# The DNS-label rule, worded without its 63-character bound (these names stop sooner).
OBJECT_NAME_VALIDATOR = RegexValidator(
    dns_label_validator.regex,
    "Use lowercase letters, digits and hyphens, starting with a letter and not ending with a "
    "hyphen.",
)


def object_name_field(*, max_length: int, afterwards: str, example: str) -> forms.CharField:
    """The name of a new cluster or VM: a DNS label of at most ``max_length`` characters.
    ``afterwards`` says what becomes of it; ``example`` shows one."""
    return forms.CharField(
        max_length=max_length,
        validators=[OBJECT_NAME_VALIDATOR],
        help_text=(
            f"Up to {max_length} lowercase letters, digits or hyphens, starting with a letter "
            f"and not ending with a hyphen. {afterwards}"
        ),
        widget=forms.TextInput(attrs={**TEXT_INPUT_ATTRS, "placeholder": f"e.g. {example}"}),
    )


ModelChoiceT = TypeVar("ModelChoiceT", bound="forms.ModelChoiceField[Any]")


def catalog_cards(field_class: type[ModelChoiceT], *, label: str) -> ModelChoiceT:
    """A choice among the catalog's offers, shown as cards (``PreviewedForm.catalog_choices``
    gives each form the offers as they are then)."""
    return field_class(queryset=None, empty_label=None, label=label, widget=forms.RadioSelect)


SpecT = TypeVar("SpecT")


class PreviewedForm(forms.Form, Generic[SpecT]):
    """A create form built from the catalog, whose quota preview follows its inputs as they
    are typed (clusters, VMs).

    Its choices are the catalog's offer when the form is built (``catalog_choices``) and its
    first values the catalog's defaults (``catalog_defaults``). Its fields are named like the
    arguments of ``spec_with_defaults``, which turns values into the request's spec, the
    catalog's defaults filling what is left open.

    ``quota_inputs`` are the fields whose values cost quota: the preview needs them well
    formed, and nothing else (the name may not be typed yet). ``free_inputs`` cost nothing
    themselves but change what the preview shows; while one is not well formed the catalog's
    default stands in.
    """

    quota_inputs: ClassVar[tuple[str, ...]] = ()
    free_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", self.catalog_defaults())
        super().__init__(*args, **kwargs)
        # Querysets are set per form: the catalog changes while the portal runs.
        for name, queryset in self.catalog_choices().items():
            self.fields[name].queryset = queryset  # type: ignore[attr-defined]

    def catalog_defaults(self) -> dict[str, Any]:
        """The initial values of an unbound form."""
        return {}

    def catalog_choices(self) -> dict[str, QuerySet[Any]]:
        """The choices of each catalog field, by field name."""
        return {}

    def spec_with_defaults(self, **values: Any) -> SpecT:
        """The spec of ``values`` (raises the catalog's ValidationError when it has no default
        for a choice left open)."""
        raise NotImplementedError

    def spec(self) -> SpecT:
        """The request, from a valid form (raises the catalog's ValidationError, if any)."""
        # Multiple choices come as querysets; a spec holds lists.
        values = {
            name: list(value) if isinstance(value, QuerySet) else value
            for name, value in self.cleaned_data.items()
        }
        return self.spec_with_defaults(**values)

    def submitted(self, name: str) -> Any:
        """The field's value as typed, cleaned on its own (None when it is not valid).

        Independent of ``errors``: a refusal the service put on the field afterwards does not
        make a well-formed value unusable (the preview still shows what it would take).
        """
        try:
            return self.fields[name].clean(self[name].data)
        except ValidationError:
            return None

    @property
    def preview_inputs(self) -> tuple[str, ...]:
        """The fields a preview request carries (``hx-include`` of the preview frame)."""
        return self.quota_inputs + self.free_inputs

    @property
    def invalid_quota_inputs(self) -> list[str]:
        """Labels of the quota inputs to correct before a preview is possible."""
        if not self.is_bound:
            return []
        return [
            str(self.fields[name].label)
            for name in self.quota_inputs
            if self.submitted(name) is None
        ]

    def preview_spec(self) -> SpecT | None:
        """What the quota preview shows: the quota inputs as typed (the catalog's defaults
        while the form is unbound); None while one of them is not well formed, or when the
        catalog has no default for a choice left open."""
        values: dict[str, Any] = {}
        if self.is_bound:
            values = {name: self.submitted(name) for name in self.quota_inputs}
            if None in values.values():
                return None
            values.update({name: self.submitted(name) for name in self.free_inputs})
        try:
            return self.spec_with_defaults(name="", **values)
        except ValidationError:
            return None


def dataclass_values(instance: Any) -> dict[str, Any]:
    """A dataclass's fields by name (shallow: model instances stay themselves)."""
    return {field.name: getattr(instance, field.name) for field in dataclasses.fields(instance)}


class TypedNameForm(forms.Form):
    """A deletion confirmed by typing the name of what goes (a cluster, a VM). The typed
    name goes to the delete service as ``confirm_name``, which checks it."""

    confirm_name = forms.CharField(max_length=100, widget=forms.TextInput(attrs=TEXT_INPUT_ATTRS))

    def __init__(self, *args: Any, name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["confirm_name"].label = f"Type “{name}” to confirm"


def name_search_field(max_length: int) -> forms.CharField:
    """The search box of a list of named things (``?q=``); longer than any name, it is invalid."""
    return forms.CharField(
        required=False,
        max_length=max_length,
        label="Search",
        widget=forms.SearchInput(attrs={"placeholder": "Search by name…", "autocomplete": "off"}),
    )


def state_filter_field(label: str, choices: list[tuple[str, str]]) -> forms.ChoiceField:
    """The state filter of a list: any state (``?state=``, empty), or one of ``choices``."""
    return forms.ChoiceField(
        required=False, label=label, choices=[("", f"All {label.lower()}s"), *choices]
    )


class ObjectFilterForm(forms.Form):
    """The search and state filter of a list of objects (GET parameters).

    Subclasses declare ``q`` (``name_search_field``) and a ``state_filter_field`` named like
    the model field whose values it filters on (``state_field``).
    """

    state_field: ClassVar[str]

    @property
    def state_choice(self) -> forms.BoundField:
        return self[self.state_field]

    def narrowing(self) -> tuple[str, str]:
        """The term to search names for and the state to keep ("" for none). Parameters that
        are not valid (an unknown state, an over-long term) narrow nothing."""
        if not self.is_valid():
            return "", ""
        term: str = self.cleaned_data["q"].strip()
        state: str = self.cleaned_data[self.state_field]
        return term, state

    def narrow(self, objects: QuerySet[Any]) -> QuerySet[Any]:
        """``objects`` whose name holds the term and which are in the state, if given."""
        term, state = self.narrowing()
        if term:
            objects = objects.filter(name__icontains=term)
        if state:
            objects = objects.filter(**{self.state_field: state})
        return objects

    @property
    def narrows(self) -> bool:
        return any(self.narrowing())

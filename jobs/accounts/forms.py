"""Small forms for the member's own account pages."""

from django import forms
from django.conf import settings
from django.utils import timezone

from jobs.models import ApiKey, BudgetPeriod, JobMode
from jobs.providers import catalogue


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name (optional)",
        required=False,
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="Helps you tell keys apart later, e.g. “Nightly render script”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ApiKeyLimitsForm(forms.Form):
    """A key's limits as a member may narrow them; empty fields mean none
    (or, for the lists, every kind of video and provider)."""

    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Empty: never.",
    )
    allowed_modes = forms.MultipleChoiceField(
        label="Kinds of video",
        required=False,
        choices=JobMode.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all.",
    )
    allowed_providers = forms.MultipleChoiceField(
        label="Providers",
        required=False,
        choices=catalogue.provider_choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all.",
    )
    budget_credits = forms.IntegerField(
        label="Budget (credits)", required=False, min_value=0, help_text="Empty: no budget."
    )
    budget_period = forms.ChoiceField(label="per", choices=BudgetPeriod.choices)
    rate_limit_per_minute = forms.IntegerField(
        label="Requests a minute", required=False, min_value=1
    )
    max_in_flight = forms.IntegerField(label="Jobs in flight", required=False, min_value=1)

    @classmethod
    def for_key(cls, key: ApiKey, data=None) -> "ApiKeyLimitsForm":
        initial = {name: getattr(key, name) for name in cls.base_fields}
        if initial["expires_at"] is not None:
            initial["expires_at"] = timezone.localtime(initial["expires_at"])
        form = cls(data, initial=initial)
        form.fields[
            "rate_limit_per_minute"
        ].help_text = f"Empty: the studio's {settings.API_RATE_LIMIT_PER_MINUTE}."
        form.fields[
            "max_in_flight"
        ].help_text = f"Empty: the studio's {settings.API_KEY_MAX_IN_FLIGHT}."
        return form

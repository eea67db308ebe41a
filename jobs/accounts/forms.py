"""Small forms for the member's own account pages."""

from django import forms

from jobs.models import ApiKey


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name (optional)",
        required=False,
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="Helps you tell keys apart later, e.g. “Nightly render script”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

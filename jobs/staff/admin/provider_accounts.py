"""Provider accounts: where each provider's jobs go; the key is write-only."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from jobs.models import ProviderAccount
from jobs.pipeline.render_times import render_times_follow_moves
from jobs.providers.accounts import (
    MAX_KEY_CHARS,
    provider_account_conflict,
    provider_account_conflict_message,
    provider_account_save,
    provider_base_url_check,
    provider_key_check,
    provider_key_readable,
)


class ProviderAccountForm(forms.ModelForm):
    """The key is a write-only field: typed once, never rendered back (not
    even after an error), and blank on a change keeps the stored key."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        max_length=MAX_KEY_CHARS,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = ProviderAccount
        fields = ("provider", "name", "base_url", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["api_key"]
        if self.instance.pk is None:
            field.required = True
            field.help_text = (
                "Written once: stored encrypted and shown back only as its last four characters."
            )
        else:
            field.help_text = (
                f"Stored: {self.instance.key_shown}. Leave blank to keep the stored key; "
                "type a new one to replace it."
            )

    @sensitive_variables("api_key")
    def clean_api_key(self) -> str:
        api_key = self.cleaned_data["api_key"]
        if api_key:
            try:
                provider_key_check(api_key)
            except ValidationError as error:
                raise ValidationError(error.message_dict["api_key"]) from None
        return api_key

    def clean_base_url(self) -> str:
        try:
            return provider_base_url_check(self.cleaned_data["base_url"])
        except ValidationError as error:
            raise ValidationError(error.message_dict["base_url"]) from None

    def clean(self):
        data = super().clean()
        if "provider" in data and "enabled" in data:
            probe = ProviderAccount(
                pk=self.instance.pk, provider=data["provider"], enabled=data["enabled"]
            )
            other = provider_account_conflict(probe)
            if other is not None:
                self.add_error("enabled", provider_account_conflict_message(other))
        return data


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    """Where each provider's jobs go. Saved through jobs.providers.accounts;
    the key is never shown, only its last four characters, and the history
    says which fields changed, never their values."""

    form = ProviderAccountForm
    list_display = ("provider", "name", "base_url", "key", "enabled", "updated_at", "updated_by")
    list_display_links = ("provider", "name")
    list_filter = ("provider", "enabled")
    search_fields = ("name", "base_url")
    list_select_related = ("updated_by",)
    readonly_fields = ("key", "created_at", "created_by", "updated_at", "updated_by")

    def get_fieldsets(self, request, obj=None):
        fields = ["provider", "name", "base_url", "api_key", "enabled"]
        if obj is None:
            return [(None, {"fields": fields})]
        return [
            (None, {"fields": fields}),
            ("Stored key and history", {"fields": list(self.readonly_fields)}),
        ]

    @admin.display(description="Key")
    def key(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        if not provider_key_readable(obj):
            return (
                f"{obj.key_shown} (can't be decrypted with the current "
                "PROVIDER_KEYS_SECRET: re-enter it)"
            )
        return obj.key_shown

    @method_decorator(sensitive_post_parameters("api_key"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_model(self, request, obj):
        with render_times_follow_moves(obj.provider):
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with render_times_follow_moves(*queryset.values_list("provider", flat=True)):
            super().delete_queryset(request, queryset)

    def save_model(self, request, obj, form, change):
        provider_account_save(
            account=obj, api_key=form.cleaned_data.get("api_key") or None, by=request.user
        )

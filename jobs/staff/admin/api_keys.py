"""Members' API keys: listed without their secret or hash; staff may revoke
and set any key's limits (members can only narrow them on the keys page)."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from jobs.credits.key_budget import key_spend
from jobs.models import ApiKey, JobMode
from jobs.providers import catalogue

from .read_only import ReadOnlyAdmin


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "active")
        return queryset


class ApiKeyLimitsForm(forms.ModelForm):
    allowed_modes = forms.MultipleChoiceField(
        choices=JobMode.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all.",
    )
    allowed_providers = forms.MultipleChoiceField(
        choices=catalogue.provider_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: all.",
    )

    class Meta:
        model = ApiKey
        fields = (
            "expires_at",
            "allowed_modes",
            "allowed_providers",
            "budget_credits",
            "budget_period",
            "rate_limit_per_minute",
            "max_in_flight",
        )


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    # Never the secret (not stored) and never its hash.
    form = ApiKeyLimitsForm
    identity = ("owner", "name", "shown_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = (*identity, "spend_this_period")
    fieldsets = (
        (None, {"fields": identity}),
        ("Limits", {"fields": ("spend_this_period", *ApiKeyLimitsForm.Meta.fields)}),
    )
    list_display = (
        "owner",
        "name",
        "shown_prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "budget",
        "revoked_at",
        "is_active",
    )
    list_filter = (KeyStatusFilter, "created_at")
    search_fields = ("owner__username", "owner__email", "name", "prefix")
    list_select_related = ("owner",)
    actions = ["revoke"]

    @admin.display(description="Key")
    def shown_prefix(self, obj) -> str:
        return f"sk_{obj.prefix}_…"

    @admin.display(description="Budget")
    def budget(self, obj) -> str:
        if obj.budget_credits is None:
            return "—"
        return f"{obj.budget_credits:,} / {obj.budget_period}"

    @admin.display(description="Spent this period")
    def spend_this_period(self, obj) -> str:
        spend = key_spend(key=obj)
        of = f" of {spend.budget:,}" if spend.budget is not None else " (no budget)"
        return f"{spend.spent:,}{of} this {spend.period}; renews {spend.renews_at:%Y-%m-%d %H:%M}"

    def has_change_permission(self, request, obj=None) -> bool:
        # Staff edit limits only; everything else stays read-only.
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    @admin.display(description="Active", boolean=True)
    def is_active(self, obj) -> bool:
        return obj.is_active

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("jobs.change_apikey")

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True))
        # Conditional, so a key revoked meanwhile keeps its first revocation time.
        ApiKey.objects.filter(pk__in=[k.pk for k in keys], revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        for key in keys:
            self.log_change(request, key, "Revoked.")
        messages.success(request, f"Revoked {len(keys)} API key(s).")

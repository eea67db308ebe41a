"""Members' API keys: listed without their secret or hash; staff may revoke."""

from django.contrib import admin, messages
from django.utils import timezone

from jobs.models import ApiKey

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


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    # Never the secret (not stored) and never its hash.
    fields = ("owner", "name", "shown_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    list_display = (
        "owner",
        "name",
        "shown_prefix",
        "created_at",
        "last_used_at",
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

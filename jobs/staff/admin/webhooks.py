"""Outbound webhook deliveries: read-only (only jobs.api.webhooks writes
them); staff may look at what was sent and why it failed, and resend."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from jobs.api.webhooks import webhook_delivery_resend
from jobs.models import WebhookDelivery

from .read_only import ReadOnlyAdmin


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "member",
        "key",
        "event_type",
        "job",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "url",
    )
    list_filter = ("status", "event_type", "created_at")
    search_fields = ("=event_id", "url", "api_key__owner__username", "api_key__name", "=job__id")
    search_help_text = (
        "An exact webhook-id or job number, a URL, a member's username or a key's name."
    )
    list_select_related = ("api_key__owner", "job")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["resend"]
    fields = (
        "event_id",
        "event_type",
        "job",
        "api_key",
        "url",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "body",
    )
    readonly_fields = fields

    @admin.display(description="Member", ordering="api_key__owner__username")
    def member(self, obj) -> str:
        return obj.api_key.owner.get_username() if obj.api_key else ""

    @admin.display(description="Key", ordering="api_key__name")
    def key(self, obj) -> str:
        return str(obj.api_key) if obj.api_key else "test event" if obj.job_id is None else ""

    @admin.display(description="Body sent")
    def body(self, obj) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    def has_resend_permission(self, request) -> bool:
        # A resend is a write: the right a change would need.
        return request.user.has_perm("jobs.change_webhookdelivery")

    @admin.action(
        description="Resend the selected deliveries now (same id and body)", permissions=["resend"]
    )
    def resend(self, request, queryset):
        deliveries = list(queryset)
        for delivery in deliveries:
            webhook_delivery_resend(delivery)
            self.log_change(request, delivery, "Resent.")
        messages.success(request, f"Queued {len(deliveries)} deliveries to send again.")

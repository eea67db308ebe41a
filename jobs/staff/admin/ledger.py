"""The ledger and the credit accounts: read-only; entries come only through
jobs.credits.ledger."""

from django.contrib import admin

from jobs.models import CreditAccount, LedgerEntry

from .read_only import ReadOnlyAdmin


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "member",
        "pool",
        "kind",
        "amount",
        "balance_after",
        "held_after",
        "resolves",
        "job",
        "reason",
        "created_by",
    )
    list_filter = (("account__pool", admin.ChoicesFieldListFilter), "kind", "created_at")
    search_fields = ("account__user__username", "account__user__email", "=idempotency_key")
    search_help_text = "Member's username or email, or an exact idempotency key."
    list_select_related = ("account__user", "job", "created_by")
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="Member", ordering="account__user__username")
    def member(self, obj) -> str:
        return obj.account.user.get_username()

    @admin.display(description="Pool", ordering="account__pool")
    def pool(self, obj) -> str:
        return obj.account.get_pool_display()

    @admin.display(description="Resolves")
    def resolves(self, obj) -> str:
        return f"Hold #{obj.hold_id}" if obj.hold_id else ""


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "pool", "balance", "held", "available", "updated_at")
    list_filter = ("pool",)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)

    @admin.display(description="Available")
    def available(self, obj) -> int:
        return obj.available

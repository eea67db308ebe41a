"""Members (Django's users) with their credits: balances in the list and on
the page, and the credit-change form, for one member (their page's Credits
link) or several (a list action). The writes are jobs.staff.credit_changes'.
"""

from uuid import uuid4

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME, AdminForm
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from jobs.credits.ledger import (
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    credits_balances,
)
from jobs.models import CreditAccount, EntryKind, Pool
from jobs.staff.credit_changes import (
    MAX_CREDIT_CHANGE,
    CreditChangeRefused,
    CreditChangeResult,
    credit_change_apply,
    credit_change_text,
)

User = get_user_model()


class CreditChangeForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind",
        choices=[
            (EntryKind.GRANT, "Grant: add credits"),
            (EntryKind.ADJUST, "Adjustment: correct the balance, up or down"),
        ],
        initial=EntryKind.GRANT,
        widget=forms.RadioSelect,
    )
    pool = forms.ChoiceField(
        label="Pool",
        choices=Pool.choices,
        initial=Pool.STUDIO,
        widget=forms.RadioSelect,
        help_text="Studio and API credits are separate: one never pays for the other.",
    )
    amount = forms.IntegerField(
        label="Credits",
        min_value=-MAX_CREDIT_CHANGE,
        max_value=MAX_CREDIT_CHANGE,
        help_text="Whole credits. A grant is positive; an adjustment may be negative "
        "to take credits away.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="The member sees it in their ledger. Required for an adjustment.",
    )
    # One key per rendered form, so a double-submitted form posts only once.
    key = forms.UUIDField(widget=forms.HiddenInput)

    FIELDS = ["kind", "pool", "amount", "reason"]

    def clean(self):
        data = super().clean()
        kind, amount = data.get("kind"), data.get("amount")
        if kind == EntryKind.GRANT and amount is not None and amount <= 0:
            self.add_error(
                "amount",
                "A grant adds credits, so it must be positive. To take credits away, "
                "choose Adjustment with a negative amount.",
            )
        if kind == EntryKind.ADJUST:
            if amount == 0:
                self.add_error("amount", "An adjustment must change the balance.")
            if not data.get("reason", "").strip():
                self.add_error("reason", "Say why: an adjustment needs a reason.")
        return data

    def add_ledger_error(self, error: LedgerError, member=None) -> None:
        prefix = f"{member.get_username()}: " if member is not None else ""
        if isinstance(error, IdempotencyConflict):
            self.add_error(
                None,
                "This form was already used to post a different change. "
                "Open the form again to post another one.",
            )
        elif isinstance(error, InsufficientCredits):
            self.add_error("amount", f"{prefix}{error}")
        else:
            self.add_error(None, f"{prefix}{error}")


def _report(request, results: list[CreditChangeResult], data: dict) -> None:
    new = [r.member.get_username() for r in results if r.is_new]
    replayed = len(results) - len(new)
    if new:
        names = ", ".join(new) if len(new) <= 5 else f"{len(new)} members"
        change = credit_change_text(kind=data["kind"], pool=data["pool"], amount=data["amount"])
        messages.success(request, f"{change} for {names}.")
    if replayed:
        messages.warning(
            request,
            f"This form was already submitted for {replayed} member(s); "
            "nothing more was posted for them.",
        )


def _account_value(pool: str, expression) -> Coalesce:
    accounts = CreditAccount.objects.filter(user=OuterRef("pk"), pool=pool)
    return Coalesce(Subquery(accounts.values(value=expression)[:1]), Value(0))


def _credits_pair(available: int, held: int) -> str:
    return f"{available:,} / {held:,}"


admin.site.unregister(User)


@admin.register(User)
class MemberAdmin(UserAdmin):
    change_form_template = "admin/jobs/member/change_form.html"
    list_display = (*UserAdmin.list_display, "studio_credits", "api_credits")
    readonly_fields = (*UserAdmin.readonly_fields, "credit_summary")
    fieldsets = (
        *UserAdmin.fieldsets[:2],
        ("Credits", {"fields": ("credit_summary",)}),
        *UserAdmin.fieldsets[2:],
    )
    actions = ["grant_or_adjust_credits"]

    def get_queryset(self, request):
        # Balances come in the same query as the members: no query per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                studio_available=_account_value(Pool.STUDIO, F("balance") - F("held")),
                studio_held=_account_value(Pool.STUDIO, F("held")),
                api_available=_account_value(Pool.API, F("balance") - F("held")),
                api_held=_account_value(Pool.API, F("held")),
            )
        )

    @admin.display(description="Studio credits (available / held)", ordering="studio_available")
    def studio_credits(self, obj) -> str:
        return _credits_pair(obj.studio_available, obj.studio_held)

    @admin.display(description="API credits (available / held)", ordering="api_available")
    def api_credits(self, obj) -> str:
        return _credits_pair(obj.api_available, obj.api_held)

    @admin.display(description="Credits")
    def credit_summary(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        rows = format_html_join(
            "",
            "<li>{}: {} available, {} held (balance {})</li>",
            (
                (b.label, f"{b.available:,}", f"{b.held:,}", f"{b.balance:,}")
                for b in credits_balances(user=obj).values()
            ),
        )
        return format_html('<ul class="credit-summary">{}</ul>', rows)

    # Posting credits is the model permission "add ledger entry"; the ledger
    # admin itself never adds rows, entries come only through jobs.credits.ledger.
    def has_credits_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("jobs.add_ledgerentry") and self.has_change_permission(
            request, obj
        )

    def get_urls(self):
        opts = self.opts
        return [
            path(
                "<id>/credits/",
                self.admin_site.admin_view(self.credits_view),
                name=f"{opts.app_label}_{opts.model_name}_credits",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_credits_permission": self.has_credits_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def credits_view(self, request, id):
        member = self.get_object(request, unquote(id))
        if not self.has_credits_permission(request, member):
            raise PermissionDenied
        if member is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, id)
        form, posted = self._credit_change(
            request, [member], submitted=request.method == "POST", name_member=False
        )
        if posted:
            change_url = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[member.pk]
            )
            return HttpResponseRedirect(change_url)
        return self._credits_page(
            request,
            "admin/jobs/member/credits.html",
            form,
            [member],
            title=f"Grant or adjust credits: {member.get_username()}",
            original=member,
        )

    @admin.action(description="Grant or adjust credits…", permissions=["credits"])
    def grant_or_adjust_credits(self, request, queryset):
        members = list(queryset.order_by("pk"))
        form, posted = self._credit_change(
            request, members, submitted="apply" in request.POST, name_member=True
        )
        if posted:
            return None  # back to the member list
        return self._credits_page(
            request,
            "admin/jobs/member/bulk_credits.html",
            form,
            members,
            title=f"Grant or adjust credits for {len(members)} members",
            action_checkbox_name=ACTION_CHECKBOX_NAME,
        )

    def _credit_change(
        self, request, members: list, *, submitted: bool, name_member: bool
    ) -> tuple[CreditChangeForm, bool]:
        """The form to show, and whether its change was posted (all or none)."""
        if not submitted:
            return CreditChangeForm(initial={"key": uuid4()}), False
        form = CreditChangeForm(request.POST)
        if not form.is_valid():
            return form, False
        data = form.cleaned_data
        try:
            results = credit_change_apply(
                members,
                kind=data["kind"],
                pool=data["pool"],
                amount=data["amount"],
                reason=data["reason"],
                form_key=data["key"],
                by=request.user,
            )
        except CreditChangeRefused as refused:
            form.add_ledger_error(refused.error, member=refused.member if name_member else None)
            return form, False
        _report(request, results, data)
        return form, True

    def _credits_page(self, request, template, form, members, **context):
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "form": form,
                "adminform": AdminForm(form, [(None, {"fields": CreditChangeForm.FIELDS})], {}),
                "members": members,
                **context,
            },
        )

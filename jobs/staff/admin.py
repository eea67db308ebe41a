"""Admin for members, credits and API keys.

Credits change only through jobs.ledger. The views here collect the input,
call the service, and record who did it twice over: `created_by` on the
ledger entry and an admin LogEntry (history) on the member.
"""

from uuid import uuid4

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME, AdminForm
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from jobs.credits.ledger import (
    IdempotencyConflict,
    InsufficientCredits,
    LedgerError,
    credits_adjust,
    credits_balances,
    credits_grant,
)
from jobs.models import (
    ApiKey,
    CreditAccount,
    EntryKind,
    Job,
    JobState,
    LedgerEntry,
    Pool,
    ProviderAccount,
    Rate,
)
from jobs.providers.accounts import (
    MAX_KEY_CHARS,
    provider_account_conflict,
    provider_account_conflict_message,
    provider_account_save,
    provider_base_url_check,
    provider_key_check,
    provider_key_readable,
)

from . import dashboard as figures
from .actions import (
    REASON_MAX_LENGTH,
    StaffActionRefused,
    fail_preview,
    job_fail_by_staff,
    job_poll_by_staff,
    job_refund,
    refund_preview,
)

User = get_user_model()

# A typo guard, far above any real grant and far below BigIntegerField's limit.
MAX_CREDIT_CHANGE = 10_000_000


# --- Credit changes -----------------------------------------------------------


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


class CreditChangeRefused(Exception):
    def __init__(self, member, error: LedgerError):
        super().__init__(str(error))
        self.member, self.error = member, error


def _entry_key(form_key, member) -> str:
    return f"admin-credits:{form_key}:{member.pk}"


def _change_text(*, kind: str, pool: str, amount: int) -> str:
    label = Pool(pool).label
    if kind == EntryKind.GRANT:
        return f"Granted {amount:,} {label} credits"
    return f"Adjusted {label} credits by {amount:+,}"


def _describe(entry: LedgerEntry) -> str:
    """The member's history line; names the entry so a replay can find it."""
    text = _change_text(kind=entry.kind, pool=entry.account.pool, amount=entry.amount)
    text += f" (ledger entry #{entry.pk})"
    return f"{text}: {entry.reason}" if entry.reason else f"{text}."


def _already_logged(member, entry: LedgerEntry) -> bool:
    # The account row stays locked until our transaction ends, so a replayed
    # submission sees the first one's LogEntry and does not log twice.
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(member, for_concrete_model=False),
        object_id=str(member.pk),
        change_message__contains=f"(ledger entry #{entry.pk})",
    ).exists()


def apply_credit_change(*, model_admin, request, members, data) -> list[tuple]:
    """Post one entry per member, all or none. Returns (member, entry, is_new)."""
    post = credits_grant if data["kind"] == EntryKind.GRANT else credits_adjust
    results = []
    with transaction.atomic():
        # One lock order for everyone, so two bulk changes cannot deadlock.
        for member in sorted(members, key=lambda m: m.pk):
            try:
                entry = post(
                    user=member,
                    pool=data["pool"],
                    amount=data["amount"],
                    key=_entry_key(data["key"], member),
                    reason=data["reason"].strip(),
                    by=request.user,
                )
            except LedgerError as error:
                raise CreditChangeRefused(member, error) from error
            is_new = not _already_logged(member, entry)
            if is_new:
                model_admin.log_change(request, member, _describe(entry))
            results.append((member, entry, is_new))
    return results


def _report(request, results, data) -> None:
    new = [member.get_username() for member, _, is_new in results if is_new]
    replayed = len(results) - len(new)
    if new:
        names = ", ".join(new) if len(new) <= 5 else f"{len(new)} members"
        change = _change_text(kind=data["kind"], pool=data["pool"], amount=data["amount"])
        messages.success(request, f"{change} for {names}.")
    if replayed:
        messages.warning(
            request,
            f"This form was already submitted for {replayed} member(s); "
            "nothing more was posted for them.",
        )


# --- Members --------------------------------------------------------------------


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
    # admin itself never adds rows, entries come only through jobs.ledger.
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
        if request.method == "POST":
            form = CreditChangeForm(request.POST)
            if form.is_valid():
                try:
                    results = apply_credit_change(
                        model_admin=self,
                        request=request,
                        members=[member],
                        data=form.cleaned_data,
                    )
                except CreditChangeRefused as refused:
                    form.add_ledger_error(refused.error)
                else:
                    _report(request, results, form.cleaned_data)
                    change_url = reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                        args=[member.pk],
                    )
                    return HttpResponseRedirect(change_url)
        else:
            form = CreditChangeForm(initial={"key": uuid4()})
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
        if "apply" in request.POST:
            form = CreditChangeForm(request.POST)
            if form.is_valid():
                try:
                    results = apply_credit_change(
                        model_admin=self,
                        request=request,
                        members=members,
                        data=form.cleaned_data,
                    )
                except CreditChangeRefused as refused:
                    form.add_ledger_error(refused.error, member=refused.member)
                else:
                    _report(request, results, form.cleaned_data)
                    return None  # back to the member list
        else:
            form = CreditChangeForm(initial={"key": uuid4()})
        return self._credits_page(
            request,
            "admin/jobs/member/bulk_credits.html",
            form,
            members,
            title=f"Grant or adjust credits for {len(members)} members",
            action_checkbox_name=ACTION_CHECKBOX_NAME,
        )

    def _credits_page(self, request, template, form, members, **context):
        fields = ["kind", "pool", "amount", "reason"]
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "form": form,
                "adminform": AdminForm(form, [(None, {"fields": fields})], {}),
                "members": members,
                **context,
            },
        )


# --- The ledger -----------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write: staff may look, never add, edit or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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


# --- API keys ---------------------------------------------------------------------


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


# --- Jobs -----------------------------------------------------------------------------------
# Staff look at jobs, poll one now, fail one with a reason or refund it
# (services in jobs.staff_actions). Nothing here can send a job to a provider
# again: there is no such action, and the services never submit. The staff
# dashboard and its ledger CSV hang off this admin's URLs.


class JobReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded on the ledger and in the job's history; the member sees it "
        "on the job's card.",
    )


# The actions that ask for a reason first: (title, verb, service, preview).
REASON_ACTIONS = {
    "refund": (
        "Refund",
        "Refund",
        job_refund,
        refund_preview,
        "A live job is failed and its hold released; a completed job's charge is "
        "given back as an adjustment; a job is refunded at most once.",
    ),
    "fail_with_reason": (
        "Fail with reason",
        "Fail",
        job_fail_by_staff,
        fail_preview,
        "A live job is failed and its hold released. It is not sent again: if the "
        "provider is still working on it, it may still bill the studio, never the member.",
    ),
}


# Read-only detail: several short fields to a row.
JOB_FIELDSETS = (
    (
        None,
        {
            "fields": [
                ("owner", "state_pill"),
                "error",
                ("mode", "dialog_order", "seed", "shared"),
                "prompt",
            ]
        },
    ),
    (
        "Provider",
        {
            "fields": [
                ("provider", "provider_model", "resolution"),
                "provider_task_id",
                ("submit_attempts", "poll_count", "archive_attempts", "next_poll_at"),
            ]
        },
    ),
    (
        "Cost as quoted",
        {
            "fields": [
                ("input_seconds", "unit_seconds", "min_seconds"),
                ("credits_per_unit", "usd_per_unit"),
                ("credits_held", "credits_charged"),
            ]
        },
    ),
    ("Output", {"fields": ["output", ("output_seconds", "output_width", "output_height")]}),
    (
        "Times",
        {
            "fields": [
                ("created_at", "submitted_at", "provider_completed_at", "finished_at"),
                ("provider_expires_at", "archived_at", "archive_expires_at"),
                ("deleted_at", "inputs_purged_at", "output_purged_at"),
            ]
        },
    ),
    ("Ledger", {"fields": ["ledger"]}),
    ("Related", {"fields": ["retried_from", "poster"], "classes": ["collapse"]}),
)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    change_list_template = "admin/jobs/job/change_list.html"
    change_form_template = "admin/jobs/job/change_form.html"
    list_display = (
        "id",
        "owner",
        "mode",
        "provider",
        "resolution",
        "state_pill",
        "credits_held",
        "credits_charged",
        "created_at",
        "finished_at",
    )
    list_filter = (
        "state",
        "provider",
        ("owner", admin.RelatedOnlyFieldListFilter),
        "mode",
        "resolution",
        "created_at",
    )
    search_fields = ("owner__username", "owner__email", "=provider_task_id", "prompt")
    search_help_text = (
        "Member's username or email, words of the prompt, or an exact provider task id."
    )
    list_select_related = ("owner",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = ["poll_now", "refund", "fail_with_reason"]
    readonly_fields = ("state_pill", "ledger")
    fieldsets = JOB_FIELDSETS

    @admin.display(description="State", ordering="state")
    def state_pill(self, obj) -> str:
        return format_html(
            '<span class="job-state job-state-{}">{}</span>', obj.state, obj.get_state_display()
        )

    @admin.display(description="Ledger entries")
    def ledger(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        entries = obj.ledger_entries.select_related("account", "created_by").order_by(
            "created_at", "id"
        )
        rows = format_html_join(
            "",
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td class="num">{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    e.pk,
                    timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    e.get_kind_display(),
                    e.account.get_pool_display(),
                    f"{e.amount:,}",
                    e.reason,
                    e.created_by.get_username() if e.created_by else "",
                )
                for e in entries
            ),
        )
        if not rows:
            return "No entries."
        return format_html(
            '<table class="job-ledger"><thead><tr><th scope="col">Entry</th>'
            '<th scope="col">When</th><th scope="col">Kind</th><th scope="col">Pool</th>'
            '<th scope="col" class="num">Credits</th><th scope="col">Reason</th>'
            '<th scope="col">By</th></tr></thead><tbody>{}</tbody></table>',
            rows,
        )

    # --- Permissions: acting on jobs is "change job"; refunds also post credits.

    def has_staff_action_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("jobs.change_job")

    def has_refund_permission(self, request, obj=None) -> bool:
        return self.has_staff_action_permission(request) and request.user.has_perm(
            "jobs.add_ledgerentry"
        )

    def has_fail_with_reason_permission(self, request, obj=None) -> bool:
        return self.has_staff_action_permission(request)

    def has_dashboard_permission(self, request) -> bool:
        return request.user.has_perm("jobs.view_job") and request.user.has_perm(
            "jobs.view_ledgerentry"
        )

    # --- Actions on the list

    @admin.action(
        description="Poll now (asks the provider; never sends again)", permissions=["staff_action"]
    )
    def poll_now(self, request, queryset):
        self._poll(request, list(queryset.order_by("pk")))

    @admin.action(description="Refund…", permissions=["refund"])
    def refund(self, request, queryset):
        return self._reason_step(request, queryset, "refund")

    @admin.action(description="Fail with reason…", permissions=["fail_with_reason"])
    def fail_with_reason(self, request, queryset):
        return self._reason_step(request, queryset, "fail_with_reason")

    def _poll(self, request, jobs) -> None:
        asked = [job for job in jobs if job_poll_by_staff(job=job, by=request.user)]
        skipped = len(jobs) - len(asked)
        if asked:
            names = ", ".join(f"#{job.pk}" for job in asked[:10])
            messages.success(
                request,
                f"Asked the provider about job(s) {names}"
                f"{' and more' if len(asked) > 10 else ''}; the state follows its answer.",
            )
        if skipped:
            messages.warning(
                request,
                f"{skipped} job(s) were not processing, so there was nothing to poll; "
                "nothing was sent.",
            )

    def _reason_step(self, request, queryset, action: str, *, single: Job | None = None):
        title, verb, service, preview, explanation = REASON_ACTIONS[action]
        jobs = list(
            queryset.select_related("owner").prefetch_related("ledger_entries").order_by("pk")
        )
        applying = "apply" in request.POST
        form = JobReasonForm(request.POST if applying else None)
        if applying and form.is_valid():
            self._apply(request, jobs, verb, service, form.cleaned_data["reason"])
            return None
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/jobs/job/reason_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"{title}: {len(jobs)} job{'s' if len(jobs) != 1 else ''}",
                "action": action,
                "verb": verb,
                "explanation": explanation,
                "form": form,
                "adminform": AdminForm(form, [(None, {"fields": ["reason"]})], {}),
                "rows": [(job, preview(job, list(job.ledger_entries.all()))) for job in jobs],
                "single": single,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    def _apply(self, request, jobs, verb: str, service, reason: str) -> None:
        done, refused = [], []
        for job in jobs:
            try:
                result = service(job=job, by=request.user, reason=reason)
            except StaffActionRefused as why:
                refused.append(str(why))
            else:
                done.append(f"#{job.pk} ({result.message})")
        if done:
            messages.success(request, f"{verb}: " + "; ".join(done) + ".")
        for why in refused:
            messages.warning(request, why)

    # --- One job's page: the same actions as buttons

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name=f"{prefix}_dashboard"),
            path("dashboard/ledger.csv", view(self.ledger_csv_view), name=f"{prefix}_ledger_csv"),
            path("<path:object_id>/refund/", view(self.refund_view), name=f"{prefix}_refund"),
            path("<path:object_id>/fail/", view(self.fail_view), name=f"{prefix}_fail"),
            path(
                "<path:object_id>/poll/",
                view(require_POST(self.poll_view)),
                name=f"{prefix}_poll",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_act": self.has_staff_action_permission(request),
            "can_refund": self.has_refund_permission(request),
            "live_states": JobState.live(),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _job_or_redirect(self, request, object_id, permission: bool):
        if not permission:
            raise PermissionDenied
        job = self.get_object(request, unquote(object_id))
        if job is None:
            return None, self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return job, None

    def _change_url(self, job) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[job.pk])

    def refund_view(self, request, object_id):
        return self._single(request, object_id, "refund", self.has_refund_permission(request))

    def fail_view(self, request, object_id):
        return self._single(
            request, object_id, "fail_with_reason", self.has_fail_with_reason_permission(request)
        )

    def _single(self, request, object_id, action: str, permission: bool):
        job, redirect = self._job_or_redirect(request, object_id, permission)
        if redirect:
            return redirect
        response = self._reason_step(request, Job.objects.filter(pk=job.pk), action, single=job)
        return response or HttpResponseRedirect(self._change_url(job))

    def poll_view(self, request, object_id):
        job, redirect = self._job_or_redirect(
            request, object_id, self.has_staff_action_permission(request)
        )
        if redirect:
            return redirect
        self._poll(request, [job])
        return HttpResponseRedirect(self._change_url(job))

    # --- The staff dashboard and the ledger export

    def dashboard_view(self, request):
        if not self.has_dashboard_permission(request):
            raise PermissionDenied
        form = figures.PeriodForm(request.GET or None)
        period = form.period
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/jobs/job/dashboard.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Staff dashboard",
                "subtitle": str(period),
                "form": form,
                "d": figures.dashboard(period),
                "presets": [(days, figures.Period.last(days)) for days in (7, 30, 90, 365)],
                "states": JobState.choices,
            },
        )

    def ledger_csv_view(self, request):
        if not request.user.has_perm("jobs.view_ledgerentry"):
            raise PermissionDenied
        form = figures.PeriodForm(request.GET or None, max_days=figures.MAX_EXPORT_DAYS)
        if request.GET and not form.is_valid():
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_dashboard")
            )
        period = form.period
        response = StreamingHttpResponse(
            figures.ledger_csv_lines(period), content_type="text/csv; charset=utf-8"
        )
        name = f"ledger-{period.start:%Y-%m-%d}-to-{period.end:%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


# The admin's front page links to the dashboard.
admin.site.index_template = "admin/jobs/index.html"


# --- Prices ---------------------------------------------------------------------------


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    """Credits and dollars per billed unit for each provider, model and
    resolution, and the shortest duration billed. A job copies its rate when
    it is quoted, so a change here prices new jobs only; add a row with a
    later "effective from" to keep the history of prices."""

    list_display = (
        "provider",
        "model",
        "resolution",
        "credits_per_unit",
        "usd_per_unit",
        "unit_seconds",
        "min_seconds",
        "effective_from",
        "note",
    )
    list_filter = ("provider", "resolution")
    ordering = ("provider", "model", "resolution", "-effective_from")


# --- Provider accounts ------------------------------------------------------------------


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
    """Where each provider's jobs go. Saved through jobs.provider_accounts;
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

    def save_model(self, request, obj, form, change):
        provider_account_save(
            account=obj, api_key=form.cleaned_data.get("api_key") or None, by=request.user
        )

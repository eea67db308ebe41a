"""Jobs: a read-only list and page with the staff actions (poll now, refund,
fail with a reason; services in jobs.staff.actions). Nothing here can send a
job to a provider again: there is no such action, and the services never
submit. The staff dashboard and its ledger CSV hang off this admin's URLs.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME, AdminForm
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from jobs.models import Job, JobState
from jobs.staff.actions import (
    REASON_MAX_LENGTH,
    StaffActionRefused,
    job_fail_by_staff,
    job_fail_preview,
    job_poll_by_staff,
    job_refund,
    job_refund_preview,
)
from jobs.staff.dashboard import views as dashboard_views

from .read_only import ReadOnlyAdmin


class JobReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded on the ledger and in the job's history; the member sees it "
        "on the job's card.",
    )


# The actions that ask for a reason first: (title, verb, service, preview, explanation).
REASON_ACTIONS = {
    "refund": (
        "Refund",
        "Refund",
        job_refund,
        job_refund_preview,
        "A live job is failed and its hold released; a completed job's charge is "
        "given back as an adjustment; a job is refunded at most once.",
    ),
    "fail_with_reason": (
        "Fail with reason",
        "Fail",
        job_fail_by_staff,
        job_fail_preview,
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
                "rows": [
                    (job, preview(job, entries=list(job.ledger_entries.all()))) for job in jobs
                ],
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

    # --- The staff dashboard and the ledger export (views in jobs.staff.dashboard)

    def dashboard_view(self, request):
        return dashboard_views.dashboard_view(request, model_admin=self)

    def ledger_csv_view(self, request):
        return dashboard_views.ledger_csv_view(request, model_admin=self)

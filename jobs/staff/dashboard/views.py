"""The dashboard page and the ledger CSV download, served under the jobs
admin's URLs (JobAdmin.get_urls), with its site, options and permissions."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from jobs.models import JobState

from .figures import dashboard
from .ledger_csv import ledger_csv_lines
from .period import MAX_EXPORT_DAYS, Period, PeriodForm


def dashboard_view(request, *, model_admin):
    if not model_admin.has_dashboard_permission(request):
        raise PermissionDenied
    form = PeriodForm(request.GET or None)
    period = form.period
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(
        request,
        "admin/jobs/job/dashboard.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": "Staff dashboard",
            "subtitle": str(period),
            "form": form,
            "d": dashboard(period),
            "presets": [(days, Period.last(days)) for days in (7, 30, 90, 365)],
            "states": JobState.choices,
        },
    )


def ledger_csv_view(request, *, model_admin):
    if not request.user.has_perm("jobs.view_ledgerentry"):
        raise PermissionDenied
    form = PeriodForm(request.GET or None, max_days=MAX_EXPORT_DAYS)
    if request.GET and not form.is_valid():
        opts = model_admin.opts
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_dashboard"))
    period = form.period
    response = StreamingHttpResponse(
        ledger_csv_lines(period), content_type="text/csv; charset=utf-8"
    )
    name = f"ledger-{period.start:%Y-%m-%d}-to-{period.end:%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response

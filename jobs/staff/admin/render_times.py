"""Render times: what the studio has learnt of each provider's speed, which
sets when jobs are polled and the "ready in about" estimates. Rows are
written by finished jobs (jobs.pipeline.render_times); staff may look, and
may make it start learning again."""

from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from jobs.models import RenderTimes
from jobs.pipeline.render_times import matched_lag, render_times_restart
from jobs.pipeline.schedule import MIN_JOBS, P_HIGH, P_LOW, PROBS, Prediction

EXAMPLE_SECONDS = 10  # a clip length staff can picture


def _prediction(row: RenderTimes) -> Prediction | None:
    if len(row.quantiles) != len(PROBS):
        return None
    return Prediction(tuple(row.quantiles), row.samples)


@admin.register(RenderTimes)
class RenderTimesAdmin(admin.ModelAdmin):
    """Seconds of rendering per second of video, learnt per provider, model
    and resolution from the latest finished jobs. Until MIN_JOBS jobs have
    finished, predictions lean on the provider page's figure; an empty row
    has been restarted and uses the page's figure alone."""

    list_display = (
        "provider",
        "provider_model",
        "resolution",
        "samples",
        "median_shown",
        "window_shown",
        "example_shown",
        "lag_shown",
        "learn_from",
        "updated_at",
    )
    list_filter = ("provider", "resolution")
    ordering = ("provider", "provider_model", "resolution")
    fields = list_display
    readonly_fields = list_display
    actions = ("learn_again",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only: only finished jobs and the action write rows

    @admin.display(description="Median (× clip length)")
    def median_shown(self, row: RenderTimes) -> str:
        prediction = _prediction(row)
        if prediction is None:
            return "— (page's figure)"
        suffix = (
            ""
            if row.samples >= MIN_JOBS
            else f" (blended with the page's, {row.samples} of {MIN_JOBS} jobs)"
        )
        return f"{prediction.median:.1f}×{suffix}"

    @admin.display(description=f"Finishes between (p{P_LOW * 100:.0f}–p{P_HIGH * 100:.0f})")
    def window_shown(self, row: RenderTimes) -> str:
        prediction = _prediction(row)
        if prediction is None:
            return "—"
        return f"{prediction.ratio(P_LOW):.1f}× – {prediction.ratio(P_HIGH):.1f}×"

    @admin.display(description=f"A {EXAMPLE_SECONDS} s clip")
    def example_shown(self, row: RenderTimes) -> str:
        prediction = _prediction(row)
        if prediction is None:
            return "—"
        low, mid, high = (prediction.ratio(p) * EXAMPLE_SECONDS for p in (P_LOW, 0.5, P_HIGH))
        return format_html(
            "about {} s <small>({}–{} s)</small>", f"{mid:.0f}", f"{low:.0f}", f"{high:.0f}"
        )

    @admin.display(description="Polls at most this far apart")
    def lag_shown(self, row: RenderTimes) -> str:
        lag = matched_lag(row.after_seen)
        if lag is None:
            return format_html(
                "{} s <small>(fixed: the archive time is not measured yet)</small>",
                f"{settings.POLL_LAG_TARGET_SECONDS:g}",
            )
        return format_html(
            "{} s <small>(a {} s poller's latency, less archiving: {}–{} s)</small>",
            f"{lag:.1f}",
            f"{settings.POLL_MATCH_SECONDS:g}",
            f"{row.after_seen[0]:.1f}",
            f"{row.after_seen[-1]:.1f}",
        )

    @admin.action(
        description="Start learning again (from the provider page's figures)",
        permissions=["change"],
    )
    def learn_again(self, request, queryset):
        restarted = 0
        for row in queryset:
            restarted += render_times_restart(
                row.provider,
                provider_model=row.provider_model,
                resolution=row.resolution,
                why=f"asked by staff member {request.user.get_username()}",
            )
        self.message_user(
            request,
            f"{restarted} render time row{'s' if restarted != 1 else ''} restarted: polls and "
            "estimates follow the provider page's figures until new jobs finish.",
            messages.SUCCESS,
        )

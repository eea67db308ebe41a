"""Rates: what each provider, model and resolution costs."""

from django.contrib import admin

from jobs.models import Rate


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

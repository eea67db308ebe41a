"""Django's admin autodiscovery imports `<app>.admin`; the registrations live in
jobs.staff.admin, split by model."""

from jobs.staff import admin  # noqa: F401

"""The staff's admin, one module per model: members and their credits, the
ledger, API keys, jobs (with the staff actions and the dashboard), rates,
provider accounts, learnt render times and outbound webhook deliveries. Importing this package
registers them all (jobs/admin.py does, for Django's autodiscovery).

The admins collect input and call services (jobs.staff.credit_changes,
jobs.staff.actions, jobs.providers.accounts); they write nothing themselves.
"""

from django.contrib import admin

from . import (  # noqa: F401 (registers)
    api_keys,
    jobs,
    ledger,
    members,
    provider_accounts,
    rates,
    render_times,
    webhooks,
)

# The admin's front page links to the dashboard.
admin.site.index_template = "admin/jobs/index.html"

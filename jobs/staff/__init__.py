"""What staff see and do, all in the Django admin: `admin/` (one ModelAdmin
module per model), `credit_changes` (grants and adjustments for members),
`actions` (poll now, fail with a reason, refund) and `dashboard/` (figures,
chart and the ledger CSV).

May import jobs.models, jobs.credits, jobs.pipeline and jobs.providers.
Nothing imports staff but jobs/admin.py, for the admin's autodiscovery, and
jobs.accounts, whose spend report draws with dashboard.chart and streams the
member's own ledger with dashboard.ledger_csv (one chart, one CSV for both).
"""

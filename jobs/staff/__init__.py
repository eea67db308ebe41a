"""What staff see and do, all in the Django admin: `admin/` (one ModelAdmin
module per model), `credit_changes` (grants and adjustments for members),
`actions` (poll now, fail with a reason, refund) and `dashboard/` (figures,
chart and the ledger CSV).

May import jobs.models, jobs.credits, jobs.pipeline and jobs.providers.
Nothing imports staff but jobs/admin.py, for the admin's autodiscovery.
"""

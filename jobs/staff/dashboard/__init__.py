"""The staff dashboard: `period` (the days chosen and their form), `figures`
(the grouped queries and the page's summary), `chart` (the spend chart's SVG
geometry), `ledger_csv` (the ledger streamed as CSV) and `views` (the page
and the download, mounted by jobs.staff.admin.jobs).

May import jobs.models and jobs.credits; reads only, never writes.
"""

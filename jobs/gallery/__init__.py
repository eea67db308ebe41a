"""The team's shared gallery: its filters, reads and poster frames (services)
and its pages (views).

May import jobs.models, pipeline (selectors, lifecycle for a remix), studio
(uploads) and files; only urls import its views.
"""

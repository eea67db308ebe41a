"""The Studio page, where a member makes jobs: the new-job form and its cost
(forms), staged uploads and their limits (uploads, upload_limits), what a job
card shows (cards), its views and the file views that serve a job's media.

May import jobs.models, credits, pipeline, providers (catalogue, routing),
files and net; only urls import its views.
"""

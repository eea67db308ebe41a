"""The job's life after the form: create and hold (lifecycle.py), submit once,
poll (poller.py, one loop at a time under a lease in leases.py), archive and
settle, fail, cancel, retry, delete, and the reconciler; provider webhooks in
(webhooks.py, views.py), signed input links (inputs.py), retention of files
(retention.py) and who may see which job (selectors.py). jobs/tasks.py holds
the django-q2 entry points that call these services.

May import jobs.models, jobs.credits, jobs.files, jobs.net and jobs.providers,
plus the one service each of jobs.studio (staged-upload copies) and
jobs.gallery (the poster) that a job's life needs; views elsewhere call in here.
"""

"""Credits: the ledger's services and balances (ledger.py), what a job
costs (pricing.py: rates in force, quotes, the amount settled) and an API
key's budget and jobs in flight, checked where the hold is made (key_budget.py),
and what keys have used (usage.py: jobs, credits charged and returned per key).

May import jobs.models and Django only; every other package that moves
credits calls in here, never the other way round. The ledger's consistency
check is the `check_ledger` management command.
"""

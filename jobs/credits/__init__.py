"""Credits: the ledger's services and balances (ledger.py) and what a job
costs (pricing.py: rates in force, quotes, the amount settled).

May import jobs.models and Django only; every other package that moves
credits calls in here, never the other way round. The ledger's consistency
check is the `check_ledger` management command.
"""

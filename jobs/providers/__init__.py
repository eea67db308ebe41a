"""Everything about the lip-sync providers, in three layers:

- catalogue.py: the providers' facts as plain data (labels, modes, models,
  speeds, output lifetimes). Imports nothing; jobs.models and pages read it.
- http.py, base.py and one adapter module per provider, adapters.py to pick
  one: speaking each provider's API. They import requests and the catalogue,
  never Django or jobs.models.
- routing.py (where each provider is reached: account, environment or
  sandbox) and accounts.py (provider accounts and their encrypted keys): the
  Django-aware side, which may import jobs.models and settings.

sandbox/ is a local stand-in provider; it imports nothing from the rest of jobs.
"""

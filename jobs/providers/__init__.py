"""Provider adapters: http.py (the one HTTP client and its submit-once rules),
base.py (the adapter surface), one module per provider, registry.py."""

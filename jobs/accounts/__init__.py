"""A member's own account: personal API keys (create, revoke, authenticate),
the credits and keys pages, the paused sign-in page and login throttling.

May import jobs.models and credits, and the staff dashboard's read-only
chart geometry and ledger CSV (the Credits page's spend report reuses them);
the api imports api_keys to authenticate.
"""

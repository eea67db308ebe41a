"""Network helpers with no business logic: the one guarded client for URLs
fetched on someone else's word (fetch.py: public addresses only, capped size
and time) and HTTP Range file responses (ranged.py).

May import Django and the HTTP libraries, never jobs.models or another
package of the app, so that anything may use them.
"""

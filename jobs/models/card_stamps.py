"""Per-member card stamps: when a member's job cards last changed, so an open
Studio page that asks "anything new?" every 2 s can be told "no" without a
query on the jobs.

A job's `updated_at` marks a change its card shows (the card update asks for
jobs changed since its cursor by it). Every write that sets it (Job.save, or
`Job.objects.filter(...).update(updated_at=...)`, see JobQuerySet.update,
and Job.objects.bulk_create) also bumps its owner's stamp here, once the
write commits. (Raw SQL bypasses it: the studio never writes jobs so; pages
would see such a change within STAMP_TRUST, jobs/studio/cards.py.)

Where the stamp lives depends on who must see it. With Redis as the cache
(`REDIS_URL`), every web node and cluster worker shares it: the stamp is one
cache read. The local-memory cache is private to each process, and a job
changes in a cluster worker while the page asks a web worker, so without
Redis the stamp is read from the database instead: the newest `updated_at`
of the member's jobs, one lookup in the (owner, updated_at) index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

log = logging.getLogger(__name__)

# Long enough to outlive any open page; a stamp that expired reads as
# unknown, which costs one full answer, never a missed card.
STAMP_TTL = 7 * 24 * 3600


def _key(owner_id: int) -> str:
    return f"cards:changed:{owner_id}"


def stamps_in_cache() -> bool:
    """True when the cache is shared by every process (Redis)."""
    return settings.CARD_STAMPS_IN_CACHE


def card_stamps_bump(owner_ids: Iterable[int], *, using: str | None = None) -> None:
    """Say that these members' cards changed, once the current transaction
    commits (at once outside one): a page that asked in between must not be
    told "nothing changed" and then miss the commit."""
    owners = sorted(set(owner_ids))
    if owners and stamps_in_cache():
        transaction.on_commit(partial(_bump_now, owners), using=using)


def _bump_now(owner_ids: list[int]) -> None:
    now_ms = int(datetime.now(tz=UTC).timestamp() * 1000)
    try:
        cache.set_many({_key(pk): now_ms for pk in owner_ids}, timeout=STAMP_TTL)
    except Exception:
        # The cache is down: pages still see the change within STAMP_TRUST
        # (jobs.studio.cards), as each "nothing changed" is trusted only so long.
        log.warning("card stamps not bumped for members %s", owner_ids, exc_info=True)


def card_stamp(owner_id: int) -> int | None:
    """When the member's cards last changed (epoch ms), or None if unknown."""
    if stamps_in_cache():
        try:
            return cache.get(_key(owner_id))
        except Exception:
            log.warning("card stamp of member %s unreadable", owner_id, exc_info=True)
            return None
    return _newest_update_ms(owner_id)


def _newest_update_ms(owner_id: int) -> int:
    """The member's newest job `updated_at` (epoch ms; 0 without jobs), from
    the (owner, updated_at) index. Plain SQL: this runs for every open page
    every 2 s, and building the ORM query cost more than running it."""
    from .job import Job  # this module is imported by job.py

    table = connection.ops.quote_name(Job._meta.db_table)
    column = connection.ops.quote_name(Job._meta.get_field("updated_at").column)
    owner = connection.ops.quote_name(Job._meta.get_field("owner").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {owner} = %s ORDER BY {column} DESC LIMIT 1",
            [owner_id],
        )
        row = cursor.fetchone()
    if row is None:
        return 0
    newest = row[0]
    if isinstance(newest, str):  # SQLite answers text, in UTC
        newest = parse_datetime(newest)
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    return int(newest.timestamp() * 1000)


def card_stamp_known(owner_id: int, *, as_of_ms: int) -> None:
    """After a full answer that found the stamp missing (never bumped,
    expired, or the cache restarted empty): record `as_of_ms`, a time before
    the page's new cursor, unless a bump got there first. The answer covered
    every change committed before its query; any later one bumps the stamp
    after its commit, replacing this value (or making this add a no-op)."""
    if not stamps_in_cache():
        return
    try:
        cache.add(_key(owner_id), as_of_ms, timeout=STAMP_TTL)
    except Exception:
        log.warning("card stamp of member %s not recorded", owner_id, exc_info=True)

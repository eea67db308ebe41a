"""The card update's common answer, "nothing changed", made cheap: a
per-member card stamp (jobs/models/card_stamps.py) answers it with no query
on the jobs, and no change to a card is ever missed for it.

Three set-ups: the stamp in a shared cache (local memory in this one process,
and Redis when REDIS_URL is set, as in CI's PostgreSQL + Redis run), and the
default without Redis, where the stamp is the member's newest `updated_at`
(the local-memory cache is per process). Transactional, so on-commit bumps run.
"""

import os
import re
import uuid
from datetime import timedelta
from functools import partial

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.gallery.services import job_share_set
from jobs.models import Job, card_stamps
from jobs.models.card_stamps import card_stamp
from jobs.pipeline import lifecycle, retention
from jobs.studio.cards import STAMP_TRUST
from tests.factories import make_job
from tests.pipeline_support import _seed_rates, run_until_terminal
from tests.stamps_support import card_ids, last_change_ago, ms, stamps_in_shared_cache

pytestmark = pytest.mark.django_db(transaction=True)


def auth_queries(settings) -> int:
    """What signing in needs: the user, and the session unless it is read
    from the cache (with Redis, sessions are cached_db)."""
    return 1 if settings.SESSION_ENGINE.endswith("cached_db") else 2


@pytest.fixture(params=["database", "locmem", "redis"])
def stamps(request, settings):
    """Where the stamps live; the value is the queries a "nothing changed" answer makes."""
    if request.param == "database":
        settings.CARD_STAMPS_IN_CACHE = False
        return auth_queries(settings) + 1  # the newest updated_at, from the index
    if request.param == "redis":
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("needs REDIS_URL (CI's PostgreSQL + Redis run)")
        stamps_in_shared_cache(settings, redis_url=url, name="stamps")
    else:
        stamps_in_shared_cache(settings, redis_url=None, name="stamps")
    return auth_queries(settings)


@pytest.fixture
def live_job(funded_alice_client, alice):
    return make_job(alice, state="processing", held=None, submitted_after=timedelta(0))


def ask(client, since: int, *jobs):
    params = {"since": since}
    if jobs:
        created = [ms(job.created_at) for job in jobs]
        params |= {"newest": max(created), "oldest": min(created)}
    return client.get(reverse("studio_cards"), params)


def test_nothing_changed_is_answered_without_a_query_on_the_jobs(
    stamps, funded_alice_client, alice, live_job, django_assert_num_queries
):
    last_change_ago(alice, 10)
    since = ms(timezone.now())

    with django_assert_num_queries(stamps) as captured:
        response = ask(funded_alice_client, since, live_job)

    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Cards-Polling"] == "1"  # its job is still live
    # The cursor stays, so the next full answer covers everything since the last.
    assert response["X-Cards-Since"] == str(since)
    jobs_queries = [q["sql"] for q in captured.captured_queries if "jobs_job" in q["sql"]]
    if card_stamps.stamps_in_cache():
        assert jobs_queries == []
    else:
        assert len(jobs_queries) == 1 and "LIMIT 1" in jobs_queries[0]


def test_the_same_count_however_many_jobs(
    stamps, funded_alice_client, alice, live_job, django_assert_num_queries
):
    for _ in range(30):
        make_job(alice, state="processing", held=None, submitted_after=timedelta(0))
    last_change_ago(alice, 10)

    with django_assert_num_queries(stamps):
        response = ask(funded_alice_client, ms(timezone.now()), live_job)

    assert response.content == b""


def test_a_change_after_the_cursor_is_never_missed(stamps, funded_alice_client, alice, live_job):
    last_change_ago(alice, 10)
    since = ms(timezone.now())
    assert ask(funded_alice_client, since, live_job).content == b""

    lifecycle.job_fail(live_job, message="The provider refused the photo.")
    response = ask(funded_alice_client, since, live_job)

    assert card_ids(response.content.decode()) == [live_job.pk]
    assert "The provider refused the photo." in response.content.decode()
    assert response["X-Cards-Polling"] == "0"  # nothing live any more
    assert int(response["X-Cards-Since"]) >= since


def test_a_new_job_from_elsewhere_reaches_the_page(stamps, funded_alice_client, alice, live_job):
    """Made by a script or in another tab: the page learns of it on its next ask."""
    last_change_ago(alice, 10)
    since = ms(timezone.now())
    assert ask(funded_alice_client, since, live_job).content == b""

    newer = make_job(alice, state="queued", held=None)
    response = ask(funded_alice_client, since, live_job)

    assert 'hx-swap-oob="afterbegin:#job-cards"' in response.content.decode()
    assert card_ids(response.content.decode()) == [newer.pk]


def test_another_members_change_leaves_my_answer_cheap(
    stamps, funded_alice_client, alice, bob, live_job, django_assert_num_queries
):
    last_change_ago(alice, 10)
    since = ms(timezone.now())
    make_job(bob, state="processing", held=None, submitted_after=timedelta(0))

    with django_assert_num_queries(stamps):
        assert ask(funded_alice_client, since, live_job).content == b""


def test_a_cursor_older_than_the_trust_window_asks_the_jobs(
    stamps, funded_alice_client, alice, live_job, monkeypatch
):
    """A bump that never reached the cache (it was down for a moment) delays
    the card by at most STAMP_TRUST: the jobs are asked again by then."""
    last_change_ago(alice, 60)
    monkeypatch.setattr(card_stamps, "_bump_now", lambda owner_ids: None)  # lost
    since = ms(timezone.now() - STAMP_TRUST + timedelta(seconds=5))
    lifecycle.job_fail(live_job, message="Stopped.")

    if card_stamps.stamps_in_cache():
        assert ask(funded_alice_client, since, live_job).content == b""  # not yet
    older = since - 10_000  # the same page, 10 s later: its cursor is now too old to trust
    response = ask(funded_alice_client, older, live_job)

    assert card_ids(response.content.decode()) == [live_job.pk]


def test_a_missing_stamp_asks_the_jobs_then_is_recorded(
    stamps, funded_alice_client, alice, live_job, django_assert_max_num_queries
):
    if not card_stamps.stamps_in_cache():
        pytest.skip("the database always knows")
    last_change_ago(alice, 60)
    cache.delete(card_stamps._key(alice.pk))  # evicted, or the cache restarted empty
    since = ms(timezone.now())

    response = ask(funded_alice_client, since, live_job)

    assert response.content != b""  # the full answer (balances at least)
    assert response["X-Cards-Polling"] == "1"
    assert card_stamp(alice.pk) is not None
    # From the cursor that answer gave, the next ask is the cheap one...
    cursor = int(response["X-Cards-Since"])
    assert ask(funded_alice_client, cursor, live_job).content == b""
    # ...until a change comes.
    lifecycle.job_fail(live_job, message="Stopped.")
    assert card_ids(ask(funded_alice_client, cursor, live_job).content.decode()) == [live_job.pk]


def test_a_cursor_from_the_future_is_not_trusted(stamps, funded_alice_client, alice, live_job):
    last_change_ago(alice, 10)
    response = ask(funded_alice_client, ms(timezone.now() + timedelta(minutes=5)), live_job)
    assert response.content != b""


# --- every change bumps ------------------------------------------------------------------


@pytest.fixture
def stamp_log(settings, monkeypatch):
    """Events in order: each SQL write that sets a job's updated_at (this
    thread's connection), and each stamp bump as it reaches the cache."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"stamps-{uuid.uuid4().hex}",
        }
    }
    settings.CARD_STAMPS_IN_CACHE = True
    events: list[tuple[str, object]] = []
    bump = card_stamps._bump_now

    def logged_bump(owner_ids):
        events.append(("bump", set(owner_ids)))
        bump(owner_ids)

    def watch(execute, sql, params, many, context):
        head = sql.split(" WHERE ", 1)[0]
        if re.match(r'\s*(UPDATE|INSERT INTO) "jobs_job"', head) and '"updated_at"' in head:
            events.append(("write", head.split()[0]))
        return execute(sql, params, many, context)

    monkeypatch.setattr(card_stamps, "_bump_now", logged_bump)
    with connection.execute_wrapper(watch):
        yield events


def every_write_followed_by_a_bump(events, owner_id: int) -> bool:
    pending = 0
    for kind, value in events:
        if kind == "write":
            pending += 1
        elif owner_id in value:
            pending = 0
    return pending == 0


def test_every_step_of_a_jobs_life_bumps_its_owners_stamp(stamp_log, pipeline, alice):
    """Created, submitting, processing, archiving, completed: each write that
    changes the card is followed by a bump, through the real pipeline."""
    job = pipeline.create_dialog()
    done = run_until_terminal(job)

    assert done.state == "completed", done.error
    writes = [e for e in stamp_log if e[0] == "write"]
    assert len(writes) >= 5  # insert, submitting, processing, archiving, completed
    assert every_write_followed_by_a_bump(stamp_log, alice.pk)


def test_every_members_action_and_retention_bumps(
    stamp_log, alice, dialog_inputs, media_root, settings, monkeypatch
):
    _seed_rates()  # the transactional flush took the migrations' rows
    credits_grant(user=alice, pool="studio", amount=1000, key="grant:alice")
    monkeypatch.setattr(lifecycle, "enqueue", lambda *args: None)  # no provider here
    real_job = partial(make_job, inputs=dialog_inputs)
    steps = {
        "cancel": lambda: lifecycle.job_cancel(real_job(alice)),
        "fail": lambda: lifecycle.job_fail(
            real_job(alice, state="processing", submitted_at=timezone.now()), message="x"
        ),
        "retry": lambda: lifecycle.job_retry(real_job(alice, state="failed", error="x")),
        "unshare": lambda: job_share_set(
            job=real_job(alice, state="completed", output="outputs/x.mp4", credits_charged=30),
            shared=False,
        ),
        "delete": lambda: lifecycle.job_delete(real_job(alice, state="failed", error="x")),
    }
    for name, step in steps.items():
        step()
        assert every_write_followed_by_a_bump(stamp_log, alice.pk), name

    settings.INPUT_RETENTION_DAYS = 1
    old = real_job(alice, state="failed", error="x")
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=2))
    stamp_log.clear()
    retention.retention_purge()
    assert ("write", "UPDATE") in stamp_log
    assert every_write_followed_by_a_bump(stamp_log, alice.pk)


def test_a_per_process_cache_never_holds_the_stamps(settings):
    """Jobs change in cluster workers and pages ask any web worker: the stamps
    go to the cache only when it is shared (Redis); a local-memory cache is
    private to each process, so without Redis the database answers."""
    backend = settings.CACHES["default"]["BACKEND"]
    assert settings.CARD_STAMPS_IN_CACHE == backend.endswith("RedisCache")
    assert settings.CARD_STAMPS_IN_CACHE == bool(settings.REDIS_URL)

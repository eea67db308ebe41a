"""Concurrent duplicates under real transactions (SQLite by default,
PostgreSQL with DATABASE_URL): 50 POSTs with one Idempotency-Key at once
make one job and one hold, and every one of them gets its answer."""

import json

import pytest
from django.test import Client

from jobs.credits.ledger import credits_balances
from jobs.models import EntryKind, IdempotencyKey, Job, LedgerEntry, Pool, Upload
from tests.credits.test_ledger_concurrency import THREADS, assert_ledger_ok
from tests.pipeline_support import _seed_rates
from tests.threads_support import run_together

pytestmark = pytest.mark.django_db(transaction=True)


def test_fifty_concurrent_duplicates_make_one_job_and_one_hold(api, alice, media_server, no_submit):
    _seed_rates()
    body = json.dumps(
        {
            "formState": {
                "image": media_server.link("face.png"),
                "audio": media_server.link("voice.mp3"),
            }
        }
    )
    headers = {"Authorization": f"Bearer {api.raw}", "Idempotency-Key": "burst-1"}

    def post(_i):
        response = Client().post(
            "/api/v1/lipsync-image", data=body, content_type="application/json", headers=headers
        )
        return response.status_code, response.json()

    results = run_together(THREADS, post)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    assert {status for status, _ in results} == {200}
    assert len({answer["id"] for _, answer in results}) == 1
    assert Job.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.HOLD).count() == 1
    assert credits_balances(user=alice)[Pool.API].held == Job.objects.get().credits_held
    assert IdempotencyKey.objects.count() == 1
    assert Upload.objects.count() == 0  # all taken by the one job
    # The files were fetched once, by the request that did the work.
    assert len(media_server.seen) == 2
    assert_ledger_ok()

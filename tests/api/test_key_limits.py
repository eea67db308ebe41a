"""A key's own limits, answered through the API: expired 401, a kind of
video or provider it may not use 403, past its budget 402 naming the budget
and when it renews, too fast 429 with Retry-After, too many jobs in flight
429; and the budget holds at the edge under 50 concurrent requests."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from jobs.credits.key_budget import key_spend, period_bounds
from jobs.credits.ledger import credits_grant, open_holds
from jobs.models import ApiKey, Job, Pool
from jobs.pipeline import lifecycle
from tests.credits.test_ledger_concurrency import THREADS, assert_ledger_ok
from tests.pipeline_support import _seed_rates
from tests.threads_support import run_together

PHOTO = "/api/v1/lipsync-image"


def _photo_body(server, **form):
    return {
        "formState": {"image": server.link("face.png"), "audio": server.link("voice.mp3")} | form
    }


def _key(alice_key, **limits) -> ApiKey:
    key = alice_key[0]
    ApiKey.objects.filter(pk=key.pk).update(**limits)
    return ApiKey.objects.get(pk=key.pk)


@pytest.mark.django_db
def test_an_expired_key_gets_401_saying_it_expired(api, alice_key):
    assert api.get("/api/v1/me").status_code == 200
    _key(alice_key, expires_at=timezone.now() - timedelta(minutes=1))
    for path in ("/api/v1/me", "/v1/tasks/00000000-0000-0000-0000-000000000000"):
        response = api.get(path)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"
    error = api.get("/api/v1/me").json()["error"]
    assert error["code"] == "key_expired"
    assert "expired" in error["message"]


@pytest.mark.django_db
def test_a_key_before_its_expiry_works(api, alice_key):
    _key(alice_key, expires_at=timezone.now() + timedelta(days=1))
    assert api.get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_a_mode_the_key_may_not_make_is_403_naming_it(api, alice_key, media_server, no_submit):
    _key(alice_key, allowed_modes=["video_dub"])
    response = api.post(PHOTO, _photo_body(media_server))
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "mode_not_allowed"
    assert "talking_photo" in error["message"]
    assert Job.objects.count() == 0
    _key(alice_key, allowed_modes=["video_dub", "talking_photo"])
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200


@pytest.mark.django_db
def test_a_provider_the_key_may_not_use_is_403_naming_it(api, alice_key, media_server, no_submit):
    _key(alice_key, allowed_providers=["joypix"])
    response = api.post(PHOTO, _photo_body(media_server, provider="lipsync_studio"))
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "provider_not_allowed"
    assert "lipsync_studio" in error["message"]
    assert Job.objects.count() == 0
    # Unnamed, the provider is one the key may use.
    response = api.post(PHOTO, _photo_body(media_server))
    assert response.status_code == 200, response.content
    assert Job.objects.get().provider == "joypix"


@pytest.mark.django_db
def test_past_its_budget_a_key_gets_402_naming_the_budget_and_renewal(
    api, alice, alice_key, media_server, no_submit
):
    _seed_rates()
    first = api.post(PHOTO, _photo_body(media_server))
    assert first.status_code == 200, first.content
    cost = Job.objects.get().credits_held
    _key(alice_key, budget_credits=cost + cost // 2, budget_period="day")
    response = api.post(PHOTO, _photo_body(media_server))
    assert response.status_code == 402, response.content
    error = response.json()["error"]
    _start, renews = period_bounds("day")
    assert error["code"] == "key_budget_exceeded"
    assert (error["budget"], error["period"], error["spent"]) == (cost + cost // 2, "day", cost)
    assert error["renews_at"] == renews.isoformat()
    assert f"{cost + cost // 2:,} credits a day" in error["message"]
    assert renews.isoformat() in error["message"]
    assert Job.objects.count() == 1
    # The member's own credits were enough: only the key's budget refused.
    assert open_holds(user=alice).count() == 1


@pytest.mark.django_db
def test_a_released_hold_gives_its_credits_back_to_the_budget(
    api, alice_key, media_server, no_submit
):
    _seed_rates()
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200
    job = Job.objects.get()
    _key(alice_key, budget_credits=job.credits_held)
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 402
    lifecycle.job_cancel(job)  # queued: cancelled at once, its hold released
    assert key_spend(key=alice_key[0]).spent == 0
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200


@pytest.mark.django_db
def test_a_budget_counts_only_this_period(api, alice_key, media_server, no_submit):
    _seed_rates()
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200
    job = Job.objects.get()
    _key(alice_key, budget_credits=job.credits_held, budget_period="day")
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 402
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=1, hours=1))
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200


@pytest.mark.django_db
def test_a_key_over_its_own_rate_gets_429_with_retry_after(api, alice_key, bob_api, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 100
    _key(alice_key, rate_limit_per_minute=2)
    assert [api.get("/api/v1/me").status_code for _ in range(2)] == [200, 200]
    refused = api.get("/api/v1/me")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "more than 2 requests" in refused.json()["error"]["message"]
    assert bob_api.get("/api/v1/me").status_code == 200  # another key keeps the default


@pytest.mark.django_db
def test_too_many_jobs_in_flight_is_429_saying_so(api, alice_key, media_server, no_submit):
    _key(alice_key, max_in_flight=1)
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200
    response = api.post(PHOTO, _photo_body(media_server))
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["code"] == "too_many_in_flight"
    assert "1 jobs in flight" in error["message"]
    lifecycle.job_cancel(Job.objects.get())  # the first one ends
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200


@pytest.mark.django_db
def test_the_staff_in_flight_default_applies_to_a_key_naming_none(
    api, media_server, no_submit, settings
):
    settings.API_KEY_MAX_IN_FLIGHT = 1
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 200
    assert api.post(PHOTO, _photo_body(media_server)).status_code == 429


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_on_a_budget_of_seven_admit_exactly_seven(
    alice, alice_key, media_server, no_submit
):
    """On SQLite by default; on PostgreSQL with DATABASE_URL."""
    _seed_rates()
    credits_grant(user=alice, pool=Pool.API, amount=1_000_000, key="grant:alice:lots")
    raw = alice_key[1]
    body = json.dumps(_photo_body(media_server))
    headers = {"Authorization": f"Bearer {raw}"}

    def post(_i):
        response = Client().post(PHOTO, data=body, content_type="application/json", headers=headers)
        return response.status_code, response.json()

    status, _ = post(0)
    assert status == 200
    probe = Job.objects.get()
    cost = probe.credits_held
    lifecycle.job_cancel(probe)  # its hold released: the budget is whole again
    assert key_spend(key=alice_key[0]).spent == 0
    _key(alice_key, budget_credits=7 * cost, max_in_flight=THREADS)

    results = run_together(THREADS, post)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 7, statuses
    assert statuses.count(402) == THREADS - 7, statuses
    assert Job.objects.filter(api_key=alice_key[0]).exclude(pk=probe.pk).count() == 7
    assert open_holds(user=alice).count() == 7
    assert key_spend(key=alice_key[0]).spent == 7 * cost
    assert_ledger_ok()


@pytest.mark.django_db
def test_joypix_routes_answer_key_limits_in_its_envelope(api, alice_key, media_server, no_submit):
    body = {
        "image_url": media_server.link("face.png"),
        "audio_url": media_server.link("voice.mp3"),
    }
    _key(alice_key, allowed_modes=["video_dub"])
    refused = api.post("/v1/lip-sync/motion-2", body)
    assert refused.status_code == 403
    answer = refused.json()
    assert (answer["code"], answer["data"]) == (403, None)
    assert "talking_photo" in answer["message"]
    _key(alice_key, allowed_modes=[], budget_credits=0)
    over = api.post("/v1/lip-sync/motion-2", body)
    assert over.status_code == 402
    assert "budget of 0 credits a month" in over.json()["message"]
    assert Job.objects.count() == 0

"""Job cards on the Studio page: what each shows, the one-request live
update that carries only changed cards and stops when nothing is live, and
the card actions (cancel, try again, delete) with their credits."""

import json
import re
from datetime import timedelta
from functools import partial

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_adjust, credits_balances, credits_grant
from jobs.models import Job, LedgerEntry
from jobs.pipeline import lifecycle
from tests.factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def real_job(dialog_inputs, media_root):
    """make_job on real media, staged and quoted as the Studio form does."""
    return partial(make_job, inputs=dialog_inputs)


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def card_ids(html: str) -> list[int]:
    found = re.findall(r'<article class="card job-card[^"]*" id="job-(\d+)"', html)
    return [int(pk) for pk in found]


# --- the page ------------------------------------------------------------------------


def test_a_member_sees_only_their_own_cards(funded_alice_client, alice, bob, real_job):
    mine = real_job(alice)
    credits_grant(user=bob, pool="studio", amount=100, key="grant:bob")
    theirs = real_job(bob)

    html = funded_alice_client.get(reverse("studio")).content.decode()

    assert card_ids(html) == [mine.pk]
    assert theirs.pk not in card_ids(html)


def test_a_live_card_shows_its_hold_and_the_page_polls(funded_alice_client, alice, real_job):
    job = real_job(alice, state="processing", submitted_at=timezone.now())

    html = funded_alice_client.get(reverse("studio")).content.decode()

    # 7 s (the longer clip) -> 2 units x 15 credits at 480p.
    assert "30 credits" in html and "$0.30" in html
    assert "Processing" in html
    assert re.search(r'data-progress-start="\d+" data-progress-expected="\d+"', html)
    assert f'id="job-{job.pk}"' in html
    assert re.search(r'data-since="\d+" data-polling="1"', html)


def test_a_rendering_card_carries_the_window_its_page_hurries_in(
    funded_alice_client, alice, real_job, settings
):
    """The page asks every second (half a second for a provider that sends
    webhooks) while the provider most likely finishes a card
    (js/studio/poller.js): from the job's predicted p2 to its p98 plus the
    poll loop's lag target, the same prediction its polls follow."""
    from jobs.pipeline.render_times import render_schedule

    settings.POLL_LAG_TARGET_SECONDS = 3
    submitted = timezone.now() - timedelta(seconds=10)
    job = real_job(alice, state="processing", submitted_at=submitted)
    queued = real_job(alice)

    html = funded_alice_client.get(reverse("studio")).content.decode()

    found = re.search(
        rf'id="job-{job.pk}" data-created="\d+" data-finish-from="(\d+)" data-finish-until="(\d+)"',
        html,
    )
    assert found, "the rendering card carries no finish window"
    schedule = render_schedule(job)
    start, end = (int(v) for v in found.groups())
    assert start == pytest.approx(ms(submitted) + schedule.first * 1000, abs=2)
    assert end == pytest.approx(ms(submitted) + (schedule.window_end + 3) * 1000, abs=2)
    assert ms(submitted) < start < end
    # A card not at the provider has none: the page asks it every 2 s.
    assert re.search(rf'id="job-{queued.pk}" data-created="\d+" aria-labelledby', html)


def test_a_webhook_providers_rendering_card_says_so_and_the_poller_carries_the_intervals(
    funded_alice_client, alice, real_job, settings
):
    """The page asks every half second inside a card's window when its
    provider sends a webhook (data-webhooks); the intervals come from the
    page itself, so poller.js and the bench's page follow the same numbers."""
    submitted = timezone.now() - timedelta(seconds=10)
    settings.WEBHOOKS_ALLOW_HTTP = True
    calls_back = real_job(alice, state="processing", submitted_at=submitted)
    # (real_job makes JoyPix jobs; lipsync.studio takes a webhook.)
    Job.objects.filter(pk=calls_back.pk).update(provider="lipsync_studio")
    joypix = real_job(alice, state="processing", submitted_at=submitted)

    html = funded_alice_client.get(reverse("studio")).content.decode()

    card = re.compile(r'<article\b[^>]*\bid="job-(\d+)"[^>]*>')
    webhooks = {int(m.group(1)): 'data-webhooks="1"' in m.group(0) for m in card.finditer(html)}
    assert webhooks == {calls_back.pk: True, joypix.pk: False}
    assert 'data-slow-ms="2000" data-fast-ms="1000" data-fastest-ms="500"' in html

    # Offered no webhook (plain http, not allowed): its window is asked every second.
    settings.WEBHOOKS_ALLOW_HTTP = False
    html = funded_alice_client.get(reverse("studio")).content.decode()
    assert "data-webhooks" not in html


def test_with_nothing_live_the_page_does_not_poll(funded_alice_client, alice, real_job):
    real_job(alice, state="failed", error="The provider refused the photo.")

    html = funded_alice_client.get(reverse("studio")).content.decode()

    assert "The provider refused the photo." in html
    assert 'data-polling="0"' in html


def test_a_completed_card_plays_the_video_and_offers_the_download(
    funded_alice_client, alice, real_job
):
    job = real_job(
        alice,
        state="completed",
        output="outputs/x.mp4",
        credits_charged=30,
        finished_at=timezone.now(),
    )

    html = funded_alice_client.get(reverse("studio")).content.decode()

    assert f'<video controls preload="metadata" playsinline src="/jobs/{job.pk}/video.mp4"' in html
    assert f'href="/jobs/{job.pk}/video.mp4?download=1"' in html
    assert "Charged" in html and "30 credits" in html


def test_an_archiving_card_counts_down_to_the_providers_deletion(
    funded_alice_client, alice, real_job
):
    expires = timezone.now() + timedelta(hours=71)
    real_job(alice, state="archiving", provider_expires_at=expires)

    html = funded_alice_client.get(reverse("studio")).content.decode()

    assert "Provider deletes it in" in html
    assert f'data-countdown="{ms(expires)}"' in html


def test_a_completed_card_counts_down_to_the_studios_own_retention(
    funded_alice_client, alice, real_job
):
    until = timezone.now() + timedelta(days=30)
    real_job(alice, state="completed", output="outputs/x.mp4", archive_expires_at=until)

    html = funded_alice_client.get(reverse("studio")).content.decode()

    assert "Video deleted in" in html and f'data-countdown="{ms(until)}"' in html


# --- live updates ----------------------------------------------------------------------


def page_of(*jobs) -> dict:
    """What a Studio page holding these cards sends with its request."""
    created = [ms(job.created_at) for job in jobs]
    return {"newest": max(created), "oldest": min(created)}


def test_an_update_carries_only_the_cards_that_changed(funded_alice_client, alice, real_job):
    quiet = real_job(alice, state="processing", submitted_at=timezone.now())
    moving = real_job(alice, state="processing", submitted_at=timezone.now())
    Job.objects.filter(pk__in=[quiet.pk, moving.pk]).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    since = ms(timezone.now() - timedelta(minutes=1))
    Job.objects.filter(pk=moving.pk).update(
        state="archiving", output_url="https://cdn.example/o.mp4", updated_at=timezone.now()
    )

    before = ms(timezone.now())
    response = funded_alice_client.get(
        reverse("studio_cards"), {"since": since} | page_of(quiet, moving)
    )

    assert response.status_code == 200
    assert response["X-Cards-Polling"] == "1"  # jobs are still live: keep polling
    assert int(response["X-Cards-Since"]) >= before  # the next cursor
    html = response.content.decode()
    assert card_ids(html) == [moving.pk]
    assert re.search(rf'<article [^>]*id="job-{moving.pk}"[^>]* hx-swap-oob="true">', html)
    assert "afterbegin" not in html


def test_a_job_newer_than_every_card_on_the_page_goes_first(funded_alice_client, alice, real_job):
    """Made in another tab, by a script, or by this page's own form."""
    shown = real_job(alice, state="processing", submitted_at=timezone.now())
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=shown.pk).update(created_at=five_minutes_ago, updated_at=five_minutes_ago)
    shown.refresh_from_db()
    since = ms(timezone.now())
    first, second = real_job(alice), real_job(alice)
    Job.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=1))

    response = funded_alice_client.get(reverse("studio_cards"), {"since": since} | page_of(shown))

    html = response.content.decode()
    before, wrapper, cards = html.partition('<div hx-swap-oob="afterbegin:#job-cards">')
    assert wrapper and "job-card" not in before
    assert card_ids(cards) == [second.pk, first.pk]  # newest first, as on the page
    assert not re.search(r'<article [^>]*hx-swap-oob="true"', cards)


def test_a_page_with_no_card_gets_every_changed_job_as_new(funded_alice_client, alice, real_job):
    job = real_job(alice)

    response = funded_alice_client.get(reverse("studio_cards"), {"since": 0})

    html = response.content.decode()
    assert 'hx-swap-oob="afterbegin:#job-cards"' in html and card_ids(html) == [job.pk]


def test_a_changed_job_older_than_the_page_is_not_sent(funded_alice_client, alice, real_job):
    """A card beyond the page's 24, or one retention just touched, has no place
    on it: sending it would only be dropped (htmx: oobErrorNoTarget)."""
    shown = real_job(alice, state="processing", submitted_at=timezone.now())
    old = real_job(alice, state="completed", output="outputs/x.mp4", credits_charged=30)
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))

    response = funded_alice_client.get(reverse("studio_cards"), {"since": 0} | page_of(shown))

    assert card_ids(response.content.decode()) == [shown.pk]


def test_the_last_update_says_to_stop_polling(funded_alice_client, alice, real_job):
    job = real_job(alice, state="completed", output="outputs/x.mp4", credits_charged=30)

    response = funded_alice_client.get(
        reverse("studio_cards"), {"since": ms(timezone.now()) - 60_000} | page_of(job)
    )

    assert response.status_code == 200
    assert response["X-Cards-Polling"] == "0"
    html = response.content.decode()
    assert card_ids(html) == [job.pk]
    assert 'id="balances"' in html  # the sidebar's credits follow the charge


def test_another_members_changes_never_reach_my_page(funded_alice_client, alice, bob, real_job):
    credits_grant(user=bob, pool="studio", amount=100, key="grant:bob")
    real_job(bob, state="processing", submitted_at=timezone.now())

    response = funded_alice_client.get(reverse("studio_cards"), {"since": 0})

    assert card_ids(response.content.decode()) == []
    assert response["X-Cards-Polling"] == "0"


@pytest.mark.parametrize(
    "params", [{"since": "yesterday"}, {"since": 0, "newest": "x"}, {"since": 0, "oldest": ""}]
)
def test_an_update_without_a_time_is_refused(funded_alice_client, params):
    assert funded_alice_client.get(reverse("studio_cards"), params).status_code == 400


# --- actions ------------------------------------------------------------------------------


def test_cancelling_a_queued_job_releases_its_hold(funded_alice_client, alice, real_job):
    job = real_job(alice)
    assert credits_balances(user=alice)["studio"].available == 70

    response = funded_alice_client.post(
        reverse("job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true"
    )

    job.refresh_from_db()
    assert job.state == "failed" and "Cancelled" in job.error
    assert credits_balances(user=alice)["studio"].available == 100
    assert "Nothing" in response.content.decode()  # nothing charged
    assert 'id="balances" aria-labelledby="balances-title" hx-swap-oob="true"' in (
        response.content.decode()
    )


def test_a_job_already_sent_cannot_be_cancelled(funded_alice_client, alice, real_job):
    job = real_job(alice, state="processing", submitted_at=timezone.now())

    response = funded_alice_client.post(
        reverse("job_cancel", args=[job.pk]), HTTP_HX_REQUEST="true"
    )

    assert "already been sent to the provider and cannot be cancelled" in response.content.decode()
    job.refresh_from_db()
    assert job.state == "processing"
    assert credits_balances(user=alice)["studio"].held == 30


def test_trying_again_makes_one_new_job_held_anew(funded_alice_client, alice, real_job, media_root):
    failed = real_job(alice)
    lifecycle.job_fail(failed, message="The provider could not find a face.")
    assert credits_balances(user=alice)["studio"].available == 100

    response = funded_alice_client.post(
        reverse("job_retry", args=[failed.pk]), HTTP_HX_REQUEST="true"
    )

    new = Job.objects.exclude(pk=failed.pk).get()
    assert (new.state, new.retried_from_id, new.credits_held) == ("queued", failed.pk, 30)
    assert credits_balances(user=alice)["studio"].available == 70
    # Its card comes through the page's poller, asked for once this is applied.
    assert json.loads(response["HX-Trigger-After-Swap"]) == {"cards-poll": {}}
    assert f"Job #{new.pk} is queued" in response.content.decode()
    # Its own copies of the inputs: deleting the failed job keeps them.
    assert set(new.inputs.values_list("file", flat=True)).isdisjoint(
        failed.inputs.values_list("file", flat=True)
    )

    again = funded_alice_client.post(reverse("job_retry", args=[failed.pk]), HTTP_HX_REQUEST="true")
    assert f"already tried again as job #{new.pk}" in again.content.decode()
    assert Job.objects.count() == 2


def test_trying_again_without_credits_changes_nothing(client, bob, real_job, media_root):
    credits_grant(user=bob, pool="studio", amount=30, key="grant:bob")
    client.force_login(bob)
    failed = real_job(bob)
    lifecycle.job_fail(failed, message="failed")
    credits_adjust(user=bob, pool="studio", amount=-10, key="adj:bob", reason="test")  # 20 left
    files_before = sorted(p.name for p in media_root.rglob("*") if p.is_file())

    response = client.post(reverse("job_retry", args=[failed.pk]), HTTP_HX_REQUEST="true")

    assert "Not enough studio credits" in response.content.decode()
    assert Job.objects.count() == 1
    assert sorted(p.name for p in media_root.rglob("*") if p.is_file()) == files_before


def test_deleting_a_finished_job_removes_its_files_and_keeps_its_ledger(
    funded_alice_client, alice, real_job, media_root, django_capture_on_commit_callbacks
):
    job = real_job(alice)
    lifecycle.job_fail(job, message="failed")
    entries = LedgerEntry.objects.filter(job=job).count()
    files = [media_root / name for name in job.inputs.values_list("file", flat=True)]
    assert all(f.exists() for f in files)

    with django_capture_on_commit_callbacks(execute=True):
        response = funded_alice_client.post(
            reverse("job_delete", args=[job.pk]), HTTP_HX_REQUEST="true"
        )

    assert response.status_code == 200
    assert not any(f.exists() for f in files)
    assert LedgerEntry.objects.filter(job=job).count() == entries == 2  # hold + release
    assert job.pk not in card_ids(funded_alice_client.get(reverse("studio")).content.decode())


def test_a_live_job_cannot_be_deleted(funded_alice_client, alice, real_job):
    job = real_job(alice, state="processing", submitted_at=timezone.now())

    response = funded_alice_client.post(
        reverse("job_delete", args=[job.pk]), HTTP_HX_REQUEST="true"
    )

    assert "can be deleted once it has finished" in response.content.decode()
    assert Job.objects.get(pk=job.pk).deleted_at is None


@pytest.mark.parametrize("action", ["job_cancel", "job_retry", "job_delete"])
def test_nobody_acts_on_another_members_job(client, alice, bob, real_job, action):
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice")
    job = real_job(alice)
    client.force_login(bob)

    assert client.post(reverse(action, args=[job.pk])).status_code == 404
    assert Job.objects.get(pk=job.pk).state == "queued"


def test_actions_only_answer_posts(funded_alice_client, alice, real_job):
    job = real_job(alice)
    assert funded_alice_client.get(reverse("job_cancel", args=[job.pk])).status_code == 405

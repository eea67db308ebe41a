"""How often an open Studio page asks for its cards, in real Chromium: every
2 s while a job is live, every second while a card is inside its predicted
finish window (a finished video then shows about a second sooner), every
half second while one is archiving or inside its window with a provider
that sends webhooks (the webhook moves the job on at once, so the page's
interval is most of the wait), and not at all once nothing is live."""

import re
import statistics
import time
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobState
from jobs.pipeline import lifecycle
from jobs.studio import cards, views
from tests.browser_support import full_page_shot
from tests.factories import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WINDOW = 7.0  # seconds the card's predicted finish window lasts from page load


def gaps(times: list[float], start: float, end: float) -> list[float]:
    inside = [t for t in times if start <= t <= end]
    return [b - a for a, b in pairwise(inside)]


def open_with_window(live_server, page, sign_in, alice, monkeypatch, **job_fields):
    """The Studio page open on one processing job whose predicted finish window
    lasts WINDOW seconds from now; returns the job, its card, the times the
    page asked for the cards (monotonic) and when the window began."""
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice")
    job = make_job(
        alice,
        state=JobState.PROCESSING,
        submitted_after=timedelta(0),
        provider_task_id="t-1",
        **job_fields,
    )
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    opened = timezone.now()
    # The prediction itself is tested with the cards; here the window is set.
    window = (opened, opened + timedelta(seconds=WINDOW))
    monkeypatch.setattr(cards, "finish_window", lambda job: window)
    asked: list[float] = []
    page.on(
        "request",
        lambda request: asked.append(time.monotonic()) if "/studio/cards/" in request.url else None,
    )
    page.goto(f"{live_server.url}/")
    card = page.locator(f"#job-{job.pk}")
    expect(card).to_have_attribute("data-finish-until", str(int(window[1].timestamp() * 1000)))
    started = time.monotonic() - (timezone.now() - opened).total_seconds()
    return job, card, asked, started


def test_the_page_asks_every_half_second_while_a_webhook_providers_card_may_finish(
    live_server, page, sign_in, alice, artifacts, monkeypatch, settings
):
    settings.WEBHOOKS_ALLOW_HTTP = True  # lipsync.studio is given a webhook for its jobs
    job, card, asked, started = open_with_window(
        live_server, page, sign_in, alice, monkeypatch, provider="lipsync_studio"
    )
    expect(card).to_have_attribute("data-webhooks", "1")

    page.wait_for_timeout((WINDOW + 5.5 - (time.monotonic() - started)) * 1000)
    fast = gaps(asked, started + 1.5, started + WINDOW - 0.5)
    slow = gaps(asked, started + WINDOW + 1.5, time.monotonic())
    assert len(fast) >= 6 and statistics.median(fast) == pytest.approx(0.5, abs=0.15), fast
    assert len(slow) >= 1 and min(slow) >= 1.7 and max(slow) <= 2.6, slow
    full_page_shot(page, artifacts / "card-polling-webhooks.png")


def test_the_page_asks_every_second_while_a_card_may_finish_and_every_2_s_otherwise(
    live_server, page, sign_in, alice, artifacts, monkeypatch
):
    job, card, asked, started = open_with_window(live_server, page, sign_in, alice, monkeypatch)
    expect(card).not_to_have_attribute("data-webhooks", "1")  # JoyPix has none

    # Inside the window, then past it (the job is still rendering: the tail).
    page.wait_for_timeout((WINDOW + 7.5 - (time.monotonic() - started)) * 1000)
    fast = gaps(asked, started + 1.5, started + WINDOW - 0.5)
    slow = gaps(asked, started + WINDOW + 1.5, time.monotonic())
    assert len(fast) >= 3 and statistics.median(fast) == pytest.approx(1.0, abs=0.3), fast
    assert len(slow) >= 2 and min(slow) >= 1.7 and max(slow) <= 2.6, slow

    # The provider finished: while it is archived the page asks every half second.
    Job.objects.filter(pk=job.pk).update(
        state=JobState.ARCHIVING,
        output_url="https://cdn.example/out.mp4",
        updated_at=timezone.now(),
    )
    expect(card).to_have_class(re.compile(r"\bjob-card--archiving\b"), timeout=5_000)
    archiving_from = time.monotonic()
    page.wait_for_timeout(4_500)
    archiving = gaps(asked, archiving_from + 0.2, time.monotonic())
    assert len(archiving) >= 6 and statistics.median(archiving) == pytest.approx(0.5, abs=0.15)
    full_page_shot(page, artifacts / "card-polling-archiving.png")

    # Settled: nothing live, the page stops asking.
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        state=JobState.FAILED, error="Stopped by staff.", finished_at=now, updated_at=now
    )
    expect(page.locator("#cards-poller")).to_have_attribute("data-polling", "0", timeout=5_000)
    count = len(asked)
    page.wait_for_timeout(2_500)
    assert len(asked) == count


def test_the_poller_sends_its_ticket_and_gets_the_cheap_answer(
    live_server, page, sign_in, alice, artifacts
):
    """The page's ticket (data-ticket) goes with every ask; with nothing
    changed it is answered the cheap way (empty, no ticket renewed), and a
    full answer's renewed ticket is the one sent next."""
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice")
    job = make_job(
        alice, state=JobState.PROCESSING, submitted_after=timedelta(0), provider_task_id="t-1"
    )
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=10))
    sign_in(page, alice)
    answers: list[dict] = []

    def on_response(response):
        if "/studio/cards/" in response.url:
            answers.append(
                {
                    "sent": response.request.headers.get("x-cards-ticket"),
                    "renewed": response.headers.get("x-cards-ticket"),
                    "empty": response.headers.get("content-length") == "0",
                }
            )

    def wait_for(done, seconds: float) -> None:
        # With Redis the stamp is the time of the last write, not its
        # updated_at, so the first ask may still be a full one (CHANGE_OVERLAP).
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            page.wait_for_timeout(200)

    def cheap(answers_seen) -> list[dict]:
        return [a for a in answers_seen if a["empty"] and not a["renewed"]]

    page.on("response", on_response)
    page.goto(f"{live_server.url}/")
    given = page.locator("#cards-poller").get_attribute("data-ticket")
    assert given
    wait_for(lambda: len(cheap(answers)) >= 2, 10)
    assert len(cheap(answers)) >= 2, answers
    first_renewal = next((i for i, a in enumerate(answers) if a["renewed"]), len(answers))
    assert all(a["sent"] == given for a in answers[: first_renewal + 1]), answers

    # A change: its full answer renews the ticket, and the page sends the new one.
    seen = len(answers)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now())
    wait_for(lambda: len(cheap(answers[seen + 1 :])) >= 1, 12)
    full = next(i for i, a in enumerate(answers) if i >= seen and a["renewed"])
    assert not answers[full]["empty"]
    assert answers[full + 1]["sent"] == answers[full]["renewed"], answers
    assert cheap(answers[full + 1 :]), answers
    full_page_shot(page, artifacts / "card-polling-ticket.png")


def test_a_cards_action_is_announced_though_the_poller_asks_while_it_is_on_its_way(
    pipeline, live_server, page, sign_in, alice, artifacts, monkeypatch
):
    """A retry changes the failed job's card too ("Tried again as #N"). An
    ask of the poller's sent while the action's answer is still on its way must
    not replace that card first: the action's form would leave the page, and
    its announcement ("Job #N is queued …") and balances would be lost."""
    failed = pipeline.create_dialog(left=1.0, right=1.0)
    lifecycle.job_fail(failed, message="The provider could not find a face.")
    make_job(alice, state=JobState.PROCESSING, submitted_after=timedelta(0), provider_task_id="t-1")
    # The retry's answer comes 1.5 s after the new job was committed (a busy
    # server): long enough for the page's ask to come back first, unsynced.
    queued = views._job_queued
    monkeypatch.setattr(views, "_job_queued", lambda response: time.sleep(1.5) or queued(response))
    page.set_viewport_size({"width": 1360, "height": 1000})
    sign_in(page, alice)
    page.goto(f"{live_server.url}/")
    card = page.locator(f"#job-{failed.pk}")

    with page.expect_request(f"**/jobs/{failed.pk}/retry/"):
        card.get_by_role("button", name="Try again").click()
    page.evaluate("htmx.trigger(document.body, 'cards-poll')")
    retried = Job.objects.filter(retried_from=failed).values_list("pk", flat=True)

    expect(page.locator("#jobs-announce")).to_contain_text(
        f"is queued; it tries job #{failed.pk} again", timeout=10_000
    )
    expect(card.get_by_role("link", name=re.compile(r"Tried again as #\d+"))).to_be_visible()
    (new_pk,) = retried
    expect(page.locator(f"#job-{new_pk}")).to_be_visible()
    expect(page.locator("#jobs-announce")).to_contain_text(f"Job #{new_pk} is queued")
    full_page_shot(page, artifacts / "card-polling-action-announced.png")

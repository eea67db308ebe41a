"""A job's own page, /jobs/<id>/: its owner and staff only (404 for anyone
else), in any state, with its inputs, options (the seed the provider
reports), the quote's breakdown, a timeline, the provider's task, the error
in full, the API key, its ledger entries; live while the job is; a fixed
number of queries. Also what the lifecycle stamps for the timeline, and
"Remix" and "Try again" on a finished job of one's own."""

import re
from datetime import UTC, datetime, timedelta
from html import escape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.accounts.api_keys import api_key_create
from jobs.credits.ledger import credits_grant
from jobs.models import Job, JobState, LedgerEntry, Upload
from jobs.pipeline import lifecycle
from jobs.providers.base import TaskStatus
from tests.factories import make_job
from tests.studio.test_history import bulk_jobs

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
LONG_ERROR = (
    "The provider refused this job: the photo has no face the model can animate "
    "(face detector confidence 0.12 < 0.5); " + "details " * 60 + "END-OF-ERROR"
)


@pytest.fixture(autouse=True)
def _alice_can_hold(alice):
    """Jobs made here hold credits as real ones do."""
    for pool in ("studio", "api"):
        credits_grant(user=alice, pool=pool, amount=10_000, key=f"grant:alice:{pool}:page")


def page(client, job):
    return client.get(reverse("job_page", args=[job.pk]))


# --- who may see it --------------------------------------------------------------------


def test_the_owner_sees_their_jobs_page_in_any_state(alice_client, alice):
    for state in JobState.values:
        job = make_job(alice, state=state, held=None)
        response = page(alice_client, job)
        assert response.status_code == 200, state
        assert f"job #{job.pk}" in response.content.decode()


def test_another_member_gets_404_even_for_a_shared_completed_job(client, alice, bob):
    job = make_job(alice, state=JobState.COMPLETED, finished_after=timedelta(), held=None)
    assert job.shared
    client.force_login(bob)
    assert page(client, job).status_code == 404
    assert client.get(reverse("job_page", args=[job.pk + 1000])).status_code == 404


def test_staff_see_any_members_job_and_whose_it_is(staff_client, alice):
    job = make_job(alice, state=JobState.FAILED, finished_after=timedelta(), held=None)
    response = page(staff_client, job)
    assert response.status_code == 200
    assert "by Alice" in response.content.decode()


def test_the_admins_view_on_site_opens_the_jobs_page(staff_client, alice):
    job = make_job(alice, state=JobState.FAILED, finished_after=timedelta(), held=None)
    change = staff_client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    link = re.search(r'href="([^"]+)" class="viewsitelink"', change).group(1)
    response = staff_client.get(link)
    assert response.status_code == 302
    assert response.url.endswith(reverse("job_page", args=[job.pk]))


def test_signed_out_visitors_are_sent_to_sign_in(client, alice):
    job = make_job(alice, held=None)
    response = page(client, job)
    assert response.status_code == 302
    assert reverse("login") in response.url


def test_only_the_owner_may_remix_a_job_from_its_page(client, alice, bob):
    job = make_job(alice, state=JobState.COMPLETED, finished_after=timedelta(), files=True)
    client.force_login(bob)
    assert client.post(reverse("job_remix", args=[job.pk])).status_code == 404
    assert not Upload.objects.filter(owner=bob).exists()


# --- what it shows ---------------------------------------------------------------------


def test_a_failed_jobs_page_shows_the_error_in_full_and_the_hold_returned(alice_client, alice):
    job = make_job(
        alice,
        state=JobState.FAILED,
        created=T0,
        submitted_after=timedelta(seconds=2),
        finished_after=timedelta(minutes=3),
        task_id="task_abc123",
        error=LONG_ERROR,
        sent_at=T0 + timedelta(seconds=1),
        first_status_at=T0 + timedelta(seconds=40),
    )

    html = page(alice_client, job).content.decode()

    assert "Why it failed" in html
    assert escape(LONG_ERROR) in html  # not truncated
    assert "task_abc123" in html
    # The timeline, each step with its time (the page shows UTC here).
    steps = timeline(html)
    assert steps["Created"] == "20 Nov 2026, 14:00:00"
    assert steps["Sent to the provider"] == "20 Nov 2026, 14:00:01"
    assert steps["Accepted by the provider"] == "20 Nov 2026, 14:00:02"
    assert steps["First status from the provider"] == "20 Nov 2026, 14:00:40"
    assert steps["Completed at the provider"] == "not yet"
    assert steps["Failed"] == "20 Nov 2026, 14:03:00"
    # Its ledger: the hold and its release; nothing charged.
    assert ledger_kinds(html) == [("Hold", "30"), ("Release", "30")]
    assert "Nothing" in html and "30 returned" in html
    assert 'hx-trigger="every 2s"' not in html  # ended: no poll


def test_a_completed_jobs_page_plays_the_video_with_its_cost_and_seed(alice_client, alice):
    job = make_job(
        alice,
        state=JobState.COMPLETED,
        files=True,
        held=30,
        charged=15,
        finished_after=timedelta(minutes=5),
        provider_done_after=timedelta(minutes=4),
        output_seconds=4.2,
        provider_seed=987654,
        archived_at=timezone.now(),
    )

    html = page(alice_client, job).content.decode()

    assert f'src="{reverse("job_video", args=[job.pk])}"' in html
    # 7.0 s -> 2 units of 5 s at 15 credits: the quote, then what was charged.
    assert "7.0 s of audio → 2 × 5 s = 10 s billed at 15 credits per 5 s." in html
    assert "15 returned (4.2 s of video)" in html
    assert "987654, reported by the provider (asked: random (−1))." in html
    assert ledger_kinds(html) == [("Hold", "30"), ("Capture", "15")]
    # Its inputs, each with a player or picture.
    for role in ("image", "left_audio", "right_audio"):
        assert reverse("job_input_media", args=[job.pk, role]) in html
    assert re.search(r"<audio controls[^>]+left_audio", html)
    assert f'action="{reverse("job_retry", args=[job.pk])}"' in html
    assert f'action="{reverse("job_remix", args=[job.pk])}"' in html


def test_a_processing_jobs_page_polls_itself_until_the_job_ends(alice_client, alice):
    job = make_job(alice, state=JobState.PROCESSING, submitted_after=timedelta(seconds=1))
    html = page(alice_client, job).content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert "data-progress-start" in html
    htmx = {"HX-Request": "true", "HX-Target": "job-live"}

    live = alice_client.get(reverse("job_page", args=[job.pk]), headers=htmx)
    assert live.status_code == 200
    assert live.content.decode().lstrip().startswith('<div id="job-live"')
    assert "Inputs" not in live.content.decode()  # players outside the live part keep playing

    lifecycle.job_fail(job, message="The provider did not finish the job in time.")
    ended = alice_client.get(reverse("job_page", args=[job.pk]), headers=htmx)
    assert ended.status_code == 286  # htmx stops polling, after swapping this last answer
    assert "The provider did not finish the job in time." in ended.content.decode()
    assert 'id="balances" aria-labelledby="balances-title" hx-swap-oob="true"' in (
        ended.content.decode()
    )  # the hold released shows in the sidebar too
    assert 'hx-trigger="every 2s"' not in ended.content.decode()


def test_an_api_jobs_page_names_its_key(alice_client, alice):
    key, _secret = api_key_create(owner=alice, name="render script")
    job = make_job(alice, held=None, source="api", pool="api", api_key=key)
    html = page(alice_client, job).content.decode()
    assert "The API, with the key <strong>render script</strong>" in html
    assert "API · render script" in html


def test_a_deleted_job_keeps_its_page_for_its_ledger(alice_client, alice):
    job = make_job(alice, state=JobState.FAILED, finished_after=timedelta())
    lifecycle.job_delete(job)
    html = page(alice_client, job).content.decode()
    assert "Deleted" in html and "Removed when the job was deleted." in html
    assert ledger_kinds(html) == [("Hold", "30"), ("Release", "30")]
    assert reverse("job_retry", args=[job.pk]) not in html


def test_the_credits_page_links_each_hold_to_its_jobs_page(alice_client, alice):
    job = make_job(alice)  # queued, its hold open
    html = alice_client.get(reverse("credits")).content.decode()
    assert f'<a href="{reverse("job_page", args=[job.pk])}">Job #{job.pk}</a>' in html
    assert "#job-" not in html


def timeline(html: str) -> dict[str, str]:
    steps = re.findall(
        r'<span class="timeline-label">([^<]+)</span>\s*'
        r'(?:<time[^>]*>([^<]+)</time>|<span class="muted">([^<]+)</span>)',
        html,
    )
    return {label: at or missing for label, at, missing in steps}


def ledger_kinds(html: str) -> list[tuple[str, str]]:
    table = html.split('class="table table--stack job-ledger"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r'data-label="Entry">(\w+) .*?data-label="Credits">([\d,]+)</td>', table, re.S
    )
    return rows


# --- the lifecycle's stamps ------------------------------------------------------------------


def test_the_first_status_and_the_reported_seed_are_kept_once(alice):
    job = make_job(alice, state=JobState.PROCESSING, submitted_after=timedelta(), held=None)
    lifecycle.job_status_apply(job, result=TaskStatus(state="processing", seed=31337))
    job.refresh_from_db()
    first = job.first_status_at
    assert first is not None and job.provider_seed == 31337

    lifecycle.job_status_apply(job, result=TaskStatus(state="processing", seed=1))
    job.refresh_from_db()
    assert (job.first_status_at, job.provider_seed) == (first, 31337)


def test_a_status_without_a_seed_stamps_the_first_answer_only(alice):
    job = make_job(alice, state=JobState.PROCESSING, submitted_after=timedelta(), held=None)
    lifecycle.job_status_apply(job, result=TaskStatus(state="pending"))
    job.refresh_from_db()
    assert job.first_status_at is not None and job.provider_seed is None


@pytest.mark.parametrize("state", ["completed", "failed"])
def test_a_first_answer_that_ends_the_job_is_stamped_too(alice, state):
    job = make_job(alice, state=JobState.PROCESSING, submitted_after=timedelta(), held=None)
    url = "https://cdn.example/o.mp4"
    answer = TaskStatus(state=state, seed=7, video_url=url, error="No face.")
    lifecycle.job_status_apply(job, result=answer, archive_task=False)
    job.refresh_from_db()
    assert job.state == (JobState.ARCHIVING if state == "completed" else JobState.FAILED)
    assert job.first_status_at is not None and job.provider_seed == 7


# --- try again and remix on finished jobs ----------------------------------------------------


def test_trying_a_completed_job_again_makes_one_new_job(
    funded_alice_client, alice, dialog_inputs, media_root
):
    done = make_job(alice, inputs=dialog_inputs, state=JobState.COMPLETED, credits_charged=None)
    url = reverse("job_retry", args=[done.pk])

    funded_alice_client.post(url)
    again = funded_alice_client.post(url)

    new = Job.objects.get(retried_from=done)
    assert new.state == JobState.QUEUED and new.pool == done.pool
    assert "already tried again" in again.content.decode() or again.status_code == 302
    card = funded_alice_client.get(reverse("studio")).content.decode()
    assert f"Tried again as #{new.pk}" in card
    assert LedgerEntry.objects.filter(job=new, kind="hold").count() == 1


def test_a_job_under_way_cannot_be_tried_again(alice):
    job = make_job(alice, state=JobState.PROCESSING, submitted_after=timedelta())
    with pytest.raises(lifecycle.JobActionRefused, match="Only a finished job"):
        lifecycle.job_retry(job)
    assert not Job.objects.filter(retried_from=job).exists()


def test_remixing_a_failed_job_opens_the_form_with_copies_of_its_files(
    funded_alice_client, alice, dialog_inputs, media_root
):
    failed = make_job(alice, inputs=dialog_inputs, state=JobState.FAILED)

    response = funded_alice_client.post(reverse("job_remix", args=[failed.pk]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("studio") + "?mode=dialog")
    copies = list(Upload.objects.filter(owner=alice))
    assert sorted(copy.original_name for copy in copies) == sorted(
        inp.original_name for inp in failed.inputs.all()
    )
    form = funded_alice_client.get(response.url).content.decode()
    for copy in copies:
        assert f'value="{copy.pk}"' in form
    assert Job.objects.filter(owner=alice).count() == 1  # nothing made until started


# --- bounded queries ------------------------------------------------------------------------


def test_the_job_page_makes_the_same_queries_with_10_or_100_jobs(alice_client, alice, bob):
    job = make_job(alice, state=JobState.PROCESSING, files=True, submitted_after=timedelta())
    counts = []
    for total in (10, 100):
        bulk_jobs(alice, total - Job.objects.filter(owner=alice).count())
        bulk_jobs(bob, 10)
        # Warm: a rendering job's expected time reads a speed cached for 5 s
        # (jobs.providers.routing.sandbox_rtf), one query more now and then.
        alice_client.get(reverse("job_page", args=[job.pk]))
        for target in ("", "job-live"):
            headers = {"HX-Request": "true", "HX-Target": target} if target else {}
            with CaptureQueriesContext(connection) as ctx:
                response = alice_client.get(reverse("job_page", args=[job.pk]), headers=headers)
            assert response.status_code == 200
            counts.append(len(ctx.captured_queries))
    assert counts[:2] == counts[2:], counts
    assert max(counts) <= 10, counts

"""The Studio's job column as a history: "Load older" pages back through
every job by (created, id), never repeating or skipping a card when new jobs
arrive meanwhile; filters by state, kind, provider and source kept in the
address; the card poller honours them; constant queries however many jobs."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.models import Job, JobInput, JobState
from jobs.studio.history import Cursor, JobFilterForm
from tests.factories import make_job

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
MODELS = {"joypix": "motion-2-dialog", "lipsync_studio": "lipsync-image-multi"}


def bulk_jobs(owner, count: int, *, start: datetime = T0, **fields) -> list[Job]:
    """`count` jobs one minute apart (newest last), each with a photo input,
    in a few queries. `fields` may vary per job: a callable gets the index."""
    rows = []
    for i in range(count):
        values = {k: (v(i) if callable(v) else v) for k, v in fields.items()}
        values.setdefault("provider", "joypix")
        values.setdefault("state", JobState.COMPLETED)
        state = values["state"]
        rows.append(
            Job(
                owner=owner,
                mode="dialog",
                provider_model=MODELS[values["provider"]],
                resolution="480p",
                credits_per_unit=15,
                credits_held=15,
                credits_charged=15 if state == JobState.COMPLETED else None,
                provider_task_id="" if state == JobState.QUEUED else f"t{i}",
                output_url="https://cdn.example/o.mp4" if state == JobState.ARCHIVING else "",
                finished_at=start + timedelta(minutes=i) if state in JobState.terminal() else None,
                **values,
            )
        )
    jobs = Job.objects.bulk_create(rows)
    JobInput.objects.bulk_create(
        JobInput(job=job, role="image", file="inputs/p.png", size=1) for job in jobs
    )
    for i, job in enumerate(jobs):  # created_at is auto_now_add: set it after
        job.created_at = start + timedelta(minutes=i)
        Job.objects.filter(pk=job.pk).update(created_at=job.created_at)
    return jobs


def card_ids(html: str) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'<article class="card job-card[^"]*" id="job-(\d+)"', html)
    ]


def older_link(html: str) -> str | None:
    found = re.search(
        r'<div class="load-older" id="load-older">\s*<a class="button" href="([^"]+)"', html
    )
    return unescape(found.group(1)) if found else None


def newest_first(jobs) -> list[int]:
    return [job.pk for job in sorted(jobs, key=lambda j: (j.created_at, j.pk), reverse=True)]


def page_through(client, url: str, *, htmx: bool = False) -> tuple[list[int], int]:
    """Every card id reached by following "Load older" from `url`, and the
    number of requests it took."""
    seen, requests = [], 0
    headers = {"HX-Request": "true", "HX-Target": "load-older"} if htmx else {}
    while url:
        html = client.get(url, headers=headers if requests else {}).content.decode()
        requests += 1
        seen += card_ids(html)
        url = older_link(html)
    return seen, requests


# --- paging back -----------------------------------------------------------------------


def test_load_older_reaches_every_job_once_newest_first(alice_client, alice, bob):
    jobs = bulk_jobs(alice, 60)
    bulk_jobs(bob, 5)

    seen, requests = page_through(alice_client, reverse("studio"))

    assert seen == newest_first(jobs)
    assert requests == 3  # 24 + 24 + 12


def test_load_older_with_htmx_appends_the_next_cards_and_a_new_button(alice_client, alice):
    jobs = bulk_jobs(alice, 30)
    first = alice_client.get(reverse("studio")).content.decode()

    more = alice_client.get(
        older_link(first), headers={"HX-Request": "true", "HX-Target": "load-older"}
    ).content.decode()

    assert 'hx-swap-oob="beforeend:#job-cards"' in more
    assert card_ids(more) == newest_first(jobs)[24:]
    assert older_link(more) is None
    assert "6 older jobs loaded; that is all of them." in more
    assert "<form" not in more.split("<article", 1)[0]  # no new-job form in the answer


def test_jobs_made_while_paging_are_neither_repeated_nor_skipped(alice_client, alice):
    jobs = bulk_jobs(alice, 60)
    first = alice_client.get(reverse("studio")).content.decode()
    # Ten new jobs arrive (the page's poller puts them on top); offsets would shift by ten.
    later = bulk_jobs(alice, 10, start=T0 + timedelta(days=1))

    url, seen = older_link(first), card_ids(first)
    while url:
        html = alice_client.get(url).content.decode()
        seen += card_ids(html)
        url = older_link(html)

    assert seen == newest_first(jobs)
    assert not set(seen) & {job.pk for job in later}


def test_jobs_made_at_the_same_moment_are_ordered_by_id_across_pages(alice_client, alice):
    jobs = bulk_jobs(alice, 30)
    Job.objects.filter(owner=alice).update(created_at=T0)  # one timestamp for all

    seen, _ = page_through(alice_client, reverse("studio"))

    assert seen == sorted((job.pk for job in jobs), reverse=True)


def test_a_mangled_cursor_shows_the_newest_page(alice_client, alice):
    jobs = bulk_jobs(alice, 3)
    html = alice_client.get(reverse("studio") + "?before=yesterday").content.decode()
    assert card_ids(html) == newest_first(jobs)


def test_the_cursor_reads_back_what_it_writes():
    cursor = Cursor(datetime(2026, 12, 3, 10, 4, 5, 123456, tzinfo=UTC), 42)
    assert Cursor.parse(str(cursor)) == cursor
    assert Cursor.parse("20261203T100405123456") is None
    assert Cursor.parse(None) is None


# --- filters ---------------------------------------------------------------------------


@pytest.fixture
def assorted(alice, bob):
    """Alice's jobs of every sort, oldest first, and one of Bob's."""
    made = {
        "joypix_done": make_job(
            alice, held=None, state=JobState.COMPLETED, finished_after=timedelta()
        ),
        "joypix_failed": make_job(
            alice, held=None, state=JobState.FAILED, finished_after=timedelta()
        ),
        "studio_live": make_job(
            alice, held=None, provider="lipsync_studio", state=JobState.PROCESSING
        ),
        "talking": make_job(
            alice, held=None, mode="talking_photo", provider="lipsync_studio", state=JobState.QUEUED
        ),
        "api_done": make_job(
            alice,
            held=None,
            state=JobState.COMPLETED,
            finished_after=timedelta(),
            source="api",
            pool="api",
        ),
    }
    for i, job in enumerate(made.values()):
        Job.objects.filter(pk=job.pk).update(created_at=T0 + timedelta(minutes=i))
    make_job(bob, held=None, state=JobState.FAILED, finished_after=timedelta())
    return {key: Job.objects.get(pk=job.pk) for key, job in made.items()}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "api_done talking studio_live joypix_failed joypix_done"),
        ("jobs-state=failed", "joypix_failed"),
        ("jobs-state=live", "talking studio_live"),
        ("jobs-state=completed&jobs-source=api", "api_done"),
        ("jobs-source=studio&jobs-state=completed", "joypix_done"),
        ("jobs-mode=talking_photo", "talking"),
        ("jobs-provider=lipsync_studio", "talking studio_live"),
        ("jobs-provider=joypix&jobs-mode=dialog&jobs-source=studio", "joypix_failed joypix_done"),
        ("jobs-mode=video_dub", ""),
    ],
)
def test_filters_narrow_and_combine(alice_client, assorted, query, expected):
    html = alice_client.get(f"{reverse('studio')}?{query}").content.decode()
    assert card_ids(html) == [assorted[key].pk for key in expected.split()]
    if not expected:
        assert "No jobs match these filters" in html


def test_the_chosen_filters_stay_selected_and_travel_with_load_older(alice_client, alice):
    bulk_jobs(alice, 60, state=lambda i: JobState.FAILED if i % 2 else JobState.COMPLETED)
    failed = list(Job.objects.filter(owner=alice, state=JobState.FAILED))

    html = alice_client.get(f"{reverse('studio')}?jobs-state=failed").content.decode()

    assert re.search(r'<option value="failed" selected>', html)
    assert "jobs-state=failed" in older_link(html)
    seen, _ = page_through(alice_client, f"{reverse('studio')}?jobs-state=failed")
    assert seen == newest_first(failed)


def test_a_wrong_filter_says_so_and_the_others_still_apply(alice_client, assorted):
    html = alice_client.get(
        f"{reverse('studio')}?jobs-state=exploded&jobs-provider=lipsync_studio"
    ).content.decode()
    assert "Select a valid choice" in html
    assert card_ids(html) == [assorted["talking"].pk, assorted["studio_live"].pk]


def test_filters_sent_without_javascript_redirect_to_a_clean_address(alice_client, assorted):
    response = alice_client.get(
        f"{reverse('studio')}?jobs-state=failed&jobs-mode=&jobs-provider=&jobs-source="
    )
    assert response.status_code == 302
    assert response.url == f"{reverse('studio')}?jobs-state=failed"


def test_filters_with_htmx_answer_the_column_and_push_its_address(alice_client, assorted):
    response = alice_client.get(
        f"{reverse('studio')}?jobs-state=failed&jobs-mode=&jobs-provider=&jobs-source=",
        headers={"HX-Request": "true", "HX-Target": "job-list"},
    )
    html = response.content.decode()
    assert response["HX-Push-Url"] == f"{reverse('studio')}?jobs-state=failed"
    assert html.lstrip().startswith('<div id="job-list"')
    assert card_ids(html) == [assorted["joypix_failed"].pk]
    assert "new-job-form" not in html


def test_the_filter_form_names_do_not_clash_with_the_new_job_form():
    names = {f"{JobFilterForm.prefix}-{name}" for name in JobFilterForm.base_fields}
    assert names == {"jobs-state", "jobs-mode", "jobs-provider", "jobs-source"}


# --- the poller and filters ----------------------------------------------------------------


def test_the_poller_brings_a_new_job_only_into_a_column_that_would_show_it(
    alice_client, alice, assorted
):
    page = alice_client.get(f"{reverse('studio')}?jobs-state=failed").content.decode()
    since = re.search(r'data-since="(\d+)"', page).group(1)
    newest = int(assorted["joypix_failed"].created_at.timestamp() * 1000)
    queued = make_job(alice, held=None)  # live, so not "failed"
    failed = make_job(alice, held=None, state=JobState.FAILED, finished_after=timedelta())
    url = reverse("studio_cards")

    answer = alice_client.get(
        url, {"since": since, "newest": newest, "oldest": newest, "jobs-state": "failed"}
    ).content.decode()

    assert failed.pk in card_ids(answer)
    assert queued.pk not in card_ids(answer)
    unfiltered = alice_client.get(
        url, {"since": since, "newest": newest, "oldest": newest}
    ).content.decode()
    assert {failed.pk, queued.pk} <= set(card_ids(unfiltered))


def test_the_poller_sends_the_columns_filters():
    template = (Path(__file__).resolve().parents[2] / "templates/jobs/studio.html").read_text()
    poller = re.search(r'<div id="cards-poller"[^>]*>', template).group(0)
    assert 'hx-include="#job-filters"' in poller


# --- cards: try again, remix, details --------------------------------------------------------


def test_a_completed_card_offers_try_again_remix_and_its_page(alice_client, alice):
    job = make_job(
        alice, held=None, state=JobState.COMPLETED, finished_after=timedelta(), files=True
    )
    html = alice_client.get(reverse("studio")).content.decode()
    card = html.split(f'id="job-{job.pk}"', 1)[1].split("</article>", 1)[0]
    assert f'action="{reverse("job_retry", args=[job.pk])}"' in card
    assert f'action="{reverse("job_remix", args=[job.pk])}"' in card
    assert f'href="{reverse("job_page", args=[job.pk])}"' in card


def test_a_card_without_its_input_files_offers_no_remix(alice_client, alice):
    job = make_job(alice, held=None, state=JobState.FAILED, finished_after=timedelta(), files=True)
    JobInput.objects.filter(job=job).update(file="")
    html = alice_client.get(reverse("studio")).content.decode()
    assert reverse("job_remix", args=[job.pk]) not in html


# --- bounded queries ------------------------------------------------------------------------


def queries(client, url: str, **headers) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


@pytest.mark.parametrize("view", ["studio", "filtered", "older"])
def test_the_paged_studio_makes_the_same_queries_with_10_or_100_jobs(alice_client, alice, view):
    counts = []
    for total in (10, 100):
        bulk_jobs(
            alice,
            total - Job.objects.filter(owner=alice).count(),
            start=T0 + timedelta(days=total),
            state=lambda i: JobState.FAILED if i % 3 else JobState.COMPLETED,
        )
        newest = Job.objects.filter(owner=alice).order_by("-created_at", "-id")[5]
        url, headers = {
            "studio": (reverse("studio"), {}),
            "filtered": (f"{reverse('studio')}?jobs-state=failed&jobs-provider=joypix", {}),
            "older": (
                f"{reverse('studio')}?before={Cursor(newest.created_at, newest.pk)}",
                {"HX-Request": "true", "HX-Target": "load-older"},
            ),
        }[view]
        counts.append(queries(alice_client, url, **headers))
    assert counts[0] == counts[1], counts

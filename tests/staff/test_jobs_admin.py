"""The jobs admin: filters and search, and the staff actions (poll now,
refund, fail with reason) with their effect on the job and the ledger. No
action ever sends a job to a provider again. And prices: a job keeps the
rate it was quoted, whatever staff change later."""

from types import SimpleNamespace

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import EntryKind, Job, JobState, LedgerEntry, Rate, Upload
from jobs.pipeline import lifecycle
from jobs.providers.sandbox import SandboxConfig, SandboxServer
from jobs.staff import actions as staff_actions
from jobs.staff.actions import StaffActionRefused, job_fail_by_staff, job_refund
from tests.factories import make_job
from tests.fetch_support import LoopbackServer
from tests.staff_support import grant, local
from tests.threads_support import run_together

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:jobs_job_changelist")


def change_url(job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


@pytest.fixture
def funded(alice, bob):
    grant(alice, 1000, local(3))
    grant(alice, 500, local(3), pool="api")
    grant(bob, 1000, local(3))


@pytest.fixture
def polls(monkeypatch):
    """Records the poll tasks the admin queues instead of calling a provider."""
    queued = []
    monkeypatch.setattr(staff_actions, "enqueue", lambda func, *args: queued.append((func, args)))
    return queued


def processing(owner, **fields) -> Job:
    return make_job(
        owner, state=JobState.PROCESSING, held=45, task_id="task-123", created=local(0, 0), **fields
    )


def completed(owner, **fields) -> Job:
    fields.setdefault("held", 45)
    return make_job(
        owner,
        state=JobState.COMPLETED,
        charged=30,
        created=local(1),
        finished_after=local(0) - local(1),
        task_id="task-456",
        **fields,
    )


def sent_once(job: Job) -> tuple:
    """What resending would change: the attempt count and the provider's task id."""
    job.refresh_from_db()
    return job.submit_attempts, job.provider_task_id


def act(client, action: str, jobs, **fields):
    data = {"action": action, "_selected_action": [j.pk for j in jobs], **fields}
    return client.post(JOBS, data, follow=True)


def history(job) -> list[str]:
    entries = LogEntry.objects.filter(content_type__model="job", object_id=str(job.pk))
    return [(e.user.username, e.get_change_message()) for e in entries.order_by("pk")]


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- The list ---------------------------------------------------------------------------


def test_the_list_filters_by_state_provider_owner_and_mode(staff_client, alice, bob, funded):
    mine = processing(alice)
    theirs = completed(bob, provider="lipsync_studio")

    html = staff_client.get(JOBS).content.decode()
    for title in ("By state", "By provider", "By owner", "By mode"):
        assert title in html
    assert '<span class="job-state job-state-processing">Processing</span>' in html

    def listed(**params):
        return list(staff_client.get(JOBS, params).context["cl"].result_list)

    assert listed(state="processing") == [mine]
    assert listed(provider="lipsync_studio") == [theirs]
    assert listed(owner__id__exact=bob.pk) == [theirs]
    assert listed(mode="dialog", state="completed") == [theirs]
    assert listed(q="bob@example.com") == [theirs]
    assert listed(q="task-123") == [mine]


def test_the_list_takes_the_same_queries_for_many_jobs(staff_client, alice, bob, funded):
    for _ in range(2):
        processing(alice)
    with CaptureQueriesContext(connection) as few:
        assert staff_client.get(JOBS).status_code == 200
    for _ in range(20):
        processing(bob)
    with CaptureQueriesContext(connection) as many:
        response = staff_client.get(JOBS)
    assert len(many) == len(few)
    # ...and those queries drew the page: every job's row, with its state.
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 22
    html = response.content.decode()
    assert html.count('<span class="job-state job-state-processing">Processing</span>') == 22


def test_a_job_page_is_read_only_and_shows_its_ledger_and_actions(staff_client, alice, funded):
    job = processing(alice)
    html = staff_client.get(change_url(job)).content.decode()

    assert 'name="_save"' not in html  # nothing to edit
    assert '<table class="job-ledger">' in html and "Hold" in html
    assert reverse("admin:jobs_job_poll", args=[job.pk]) in html
    assert reverse("admin:jobs_job_refund", args=[job.pk]) in html
    assert reverse("admin:jobs_job_fail", args=[job.pk]) in html


def test_no_action_can_send_a_job_again(staff_client):
    response = staff_client.get(JOBS)
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert actions == ["", "poll_now", "refund", "fail_with_reason"]
    assert not any(
        word in name for name in actions for word in ("submit", "retry", "resend", "delete")
    )


# --- Poll now ---------------------------------------------------------------------------


def test_poll_now_asks_about_a_processing_job_and_changes_nothing_else(
    staff_client, staff, alice, funded, polls
):
    job = processing(alice)
    before = sent_once(job)
    response = act(staff_client, "poll_now", [job])

    assert polls == [("jobs.tasks.poll_job", (job.pk,))]
    assert sent_once(job) == before and job.state == JobState.PROCESSING
    assert history(job) == [("sam", "Poll now: asked the provider for the job's status.")]
    assert any(f"Asked the provider about job(s) #{job.pk}" in m for m in page_messages(response))


@pytest.mark.parametrize(
    "state", [JobState.QUEUED, JobState.SUBMITTING, JobState.ARCHIVING, JobState.FAILED]
)
def test_poll_now_on_a_job_that_is_not_processing_does_nothing(
    staff_client, alice, funded, polls, state
):
    job = make_job(alice, state=state, created=local(0, 0))
    before = sent_once(job)
    response = act(staff_client, "poll_now", [job])

    assert polls == []
    assert sent_once(job) == before
    job.refresh_from_db()
    assert job.state == state and history(job) == []
    assert any("nothing was sent" in m for m in page_messages(response))


@pytest.fixture
def sandbox(settings, tmp_path):
    """The sandbox provider on a real port, as every provider's endpoint."""
    key = "sk_sandbox_staff_0123456789"
    server = SandboxServer(SandboxConfig(api_key=key, storage_dir=tmp_path / "sandbox")).start()
    settings.SANDBOX_URL, settings.SANDBOX_API_KEY = server.url, key
    settings.JOYPIX_BASE_URL = settings.JOYPIX_API_KEY = ""
    settings.LIPSYNC_STUDIO_BASE_URL = settings.LIPSYNC_STUDIO_API_KEY = ""
    try:
        yield server
    finally:
        server.stop()


def test_the_poll_task_never_submits(staff_client, alice, funded, sandbox, settings):
    """What "poll now" queues is the task the webhooks use: it asks the
    provider for the job's status and never sends the job, even when the
    provider has forgotten it (the case where sending again would tempt)."""
    settings.JOB_NOT_FOUND_POLLS, settings.JOB_NOT_FOUND_SECONDS = 1, 0
    job = processing(alice)
    before = sent_once(job)

    act(staff_client, "poll_now", [job])  # tasks run inline in the tests

    asked = [(c.method, c.path, c.status) for c in sandbox.calls]
    assert asked == [("GET", "/v1/tasks/task-123", 404)]  # the poll reached the provider
    assert sandbox.submissions == {}
    assert sent_once(job) == before
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "no longer knows this job" in job.error
    assert credits_balances(user=alice)["studio"].available == 1000


def test_poll_now_from_the_job_page_is_a_post(staff_client, alice, funded, polls):
    job = processing(alice)
    url = reverse("admin:jobs_job_poll", args=[job.pk])
    assert staff_client.get(url).status_code == 405
    response = staff_client.post(url)
    assert response.status_code == 302 and response["Location"] == change_url(job)
    assert polls == [("jobs.tasks.poll_job", (job.pk,))]


# --- Refund -----------------------------------------------------------------------------


def test_refund_asks_for_a_reason_and_shows_what_will_happen(staff_client, alice, funded):
    live, done = processing(alice), completed(alice)
    response = act(staff_client, "refund", [live, done])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/jobs/job/reason_form.html"
    html = response.content.decode()
    assert "Fail it and release its hold of 45 credits." in html
    assert "Give back the 30 credits charged." in html
    assert 'value="Refund 2 jobs"' in html
    assert LedgerEntry.objects.filter(kind=EntryKind.ADJUST).count() == 0


def test_refund_without_a_reason_is_refused_and_changes_nothing(staff_client, alice, funded):
    job = completed(alice)
    response = act(staff_client, "refund", [job], apply="1", reason="  ")
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not LedgerEntry.objects.filter(kind=EntryKind.ADJUST).exists()


def test_refunding_a_live_job_fails_it_and_releases_its_hold(staff_client, staff, alice, funded):
    job = processing(alice)
    before = sent_once(job)
    response = act(staff_client, "refund", [job], apply="1", reason="Stuck at the provider")

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "Stuck at the provider" in job.error
    assert sent_once(job) == before
    release = LedgerEntry.objects.get(job=job, kind=EntryKind.RELEASE)
    assert (release.amount, release.created_by) == (45, staff)
    assert release.reason == f"Job #{job.pk} refunded by staff: Stuck at the provider"
    assert release.idempotency_key == f"job:{job.pk}:release"
    assert credits_balances(user=alice)["studio"].held == 0
    assert history(job)[0][0] == "sam"
    assert f"Refund: #{job.pk} (failed, releasing 45 held credits)." in page_messages(response)


def test_refunding_a_completed_job_gives_its_charge_back_once(staff_client, staff, alice, funded):
    job = completed(alice, pool="api")
    before = sent_once(job)
    balance = credits_balances(user=alice)["api"].balance
    act(staff_client, "refund", [job], apply="1", reason="Lips out of sync")

    refund = LedgerEntry.objects.get(kind=EntryKind.ADJUST)
    assert (refund.amount, refund.account.pool, refund.account.user) == (30, "api", alice)
    assert (refund.created_by, refund.job) == (staff, job)
    assert refund.idempotency_key == f"job:{job.pk}:refund"
    assert refund.reason == f"Refund of job #{job.pk}: Lips out of sync"
    assert credits_balances(user=alice)["api"].balance == balance + 30
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED and sent_once(job) == before
    assert history(job) == [
        ("sam", f"Refunded 30 API credits (ledger entry #{refund.pk}): Lips out of sync")
    ]

    again = act(staff_client, "refund", [job], apply="1", reason="Again")
    assert LedgerEntry.objects.filter(kind=EntryKind.ADJUST).count() == 1
    assert credits_balances(user=alice)["api"].balance == balance + 30
    assert any("was already refunded" in m for m in page_messages(again))
    assert len(history(job)) == 1


def test_a_second_refund_is_refused_by_the_service_too(staff, alice, funded):
    job = completed(alice)
    job_refund(job=job, by=staff, reason="Once")
    with pytest.raises(StaffActionRefused, match="already refunded"):
        job_refund(job=job, by=staff, reason="Twice")
    assert LedgerEntry.objects.filter(idempotency_key=f"job:{job.pk}:refund").count() == 1


def test_a_refunded_jobs_preview_says_so(staff_client, staff, alice, funded):
    job = completed(alice)
    job_refund(job=job, by=staff, reason="Once")
    html = act(staff_client, "refund", [job]).content.decode()
    assert "Nothing: it was refunded already." in html


def test_a_failed_job_has_nothing_to_refund(staff_client, alice, funded):
    job = make_job(
        alice, state=JobState.FAILED, created=local(1), finished_after=local(0) - local(1)
    )
    count = LedgerEntry.objects.count()
    response = act(staff_client, "refund", [job], apply="1", reason="Please")
    assert LedgerEntry.objects.count() == count
    assert any("never charged: nothing to refund" in m for m in page_messages(response))


def test_a_failed_job_whose_hold_was_left_open_gets_it_released(staff, alice, funded):
    job = make_job(alice, state=JobState.FAILED, created=local(1))  # hold still open
    result = job_refund(job=job, by=staff, reason="Tidy up")
    assert (result.entry.kind, result.entry.amount, result.entry.created_by) == (
        EntryKind.RELEASE,
        30,
        staff,
    )
    assert credits_balances(user=alice)["studio"].held == 0


def test_a_completed_job_that_cost_nothing_has_nothing_to_refund(staff, alice, funded):
    job = make_job(
        alice,
        state=JobState.COMPLETED,
        charged=0,
        created=local(1),
        finished_after=local(0) - local(1),
    )
    with pytest.raises(StaffActionRefused, match="not charged"):
        job_refund(job=job, by=staff, reason="Free")


def test_refund_from_the_job_page(staff_client, staff, alice, funded):
    job = completed(alice)
    url = reverse("admin:jobs_job_refund", args=[job.pk])
    form = staff_client.get(url)
    assert form.status_code == 200 and 'value="Refund 1 job"' in form.content.decode()
    response = staff_client.post(url, {"apply": "1", "reason": "Wrong photo"})
    assert response.status_code == 302 and response["Location"] == change_url(job)
    assert LedgerEntry.objects.get(kind=EntryKind.ADJUST).amount == 30


# --- Fail with reason -------------------------------------------------------------------


@pytest.mark.parametrize(
    "state", [JobState.QUEUED, JobState.SUBMITTING, JobState.PROCESSING, JobState.ARCHIVING]
)
def test_fail_with_reason_releases_the_hold_of_a_live_job(
    staff_client, staff, alice, funded, state
):
    job = make_job(alice, state=state, held=45, created=local(0, 0))
    before = sent_once(job)
    response = act(staff_client, "fail_with_reason", [job], apply="1", reason="Bad input")

    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.finished_at is not None
    assert job.error == "Stopped by the studio's staff: Bad input. Its credits were released."
    assert sent_once(job) == before
    release = LedgerEntry.objects.get(job=job, kind=EntryKind.RELEASE)
    assert (release.amount, release.created_by) == (45, staff)
    assert release.reason == f"Job #{job.pk} failed by staff: Bad input"
    assert credits_balances(user=alice)["studio"].held == 0
    assert history(job) == [
        ("sam", f"Failed by staff (was {state}), releasing 45 held credits: Bad input")
    ]
    assert f"Fail: #{job.pk} (failed, releasing 45 held credits)." in page_messages(response)


def test_a_job_that_has_ended_cannot_be_failed(staff_client, alice, funded):
    job = completed(alice)
    count = LedgerEntry.objects.count()
    response = act(staff_client, "fail_with_reason", [job], apply="1", reason="Oops")
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED and LedgerEntry.objects.count() == count
    assert any("has already ended (completed)" in m for m in page_messages(response))


def test_failing_several_jobs_reports_each(staff_client, alice, bob, funded):
    live, done = processing(alice), completed(bob)
    response = act(staff_client, "fail_with_reason", [live, done], apply="1", reason="Outage")
    messages = page_messages(response)
    assert f"Fail: #{live.pk} (failed, releasing 45 held credits)." in messages
    assert any(f"Job #{done.pk} has already ended" in m for m in messages)


def test_a_staff_decision_stands_against_the_pipeline(staff, alice, funded, monkeypatch):
    """The archiver or the submitter finding a job failed by staff leaves it be."""
    archiving = make_job(alice, state=JobState.ARCHIVING, created=local(0, 0))
    queued = make_job(alice, state=JobState.QUEUED, created=local(0, 0))
    for job in (archiving, queued):
        job_fail_by_staff(job=job, by=staff, reason="Stop")

    monkeypatch.setattr(lifecycle, "_download", lambda *a, **k: pytest.fail("downloaded"))
    lifecycle.job_archive(archiving.pk)
    lifecycle.job_submit(queued.pk)

    for job in (archiving, queued):
        job.refresh_from_db()
        assert job.state == JobState.FAILED
    assert sent_once(queued) == (0, "")
    assert not LedgerEntry.objects.filter(kind=EntryKind.CAPTURE).exists()


# --- Permissions ------------------------------------------------------------------------


def test_staff_who_may_only_look_get_no_actions(client, bob, alice, funded):
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(bob)
    job = completed(alice)

    response = client.get(JOBS)
    assert response.status_code == 200
    assert (
        response.context["action_form"] is None
        or [name for name, _ in response.context["action_form"].fields["action"].choices if name]
        == []
    )
    assert client.get(reverse("admin:jobs_job_refund", args=[job.pk])).status_code == 403
    assert client.post(reverse("admin:jobs_job_poll", args=[job.pk])).status_code == 403
    assert act(client, "refund", [job], apply="1", reason="x").status_code == 200
    assert not LedgerEntry.objects.filter(kind=EntryKind.ADJUST).exists()


def test_members_cannot_reach_the_jobs_admin(client, alice):
    client.force_login(alice)
    response = client.get(JOBS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- Prices: a job keeps the rate it was quoted -------------------------------------------


def test_a_later_rate_change_does_not_reprice_a_jobs_settlement(
    staff_client, alice, settings, tmp_path, monkeypatch, serve
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # The provider's output, downloaded for real from a loopback server.
    settings.FETCH_ALLOW_LOOPBACK = True
    provider = serve(LoopbackServer.body(b"mp4 bytes"))
    # The seeded price (seeded again here: a transactional test run earlier flushes it).
    Rate.objects.get_or_create(
        provider="joypix",
        model="motion-2-dialog",
        resolution="480p",
        defaults={"credits_per_unit": 15, "usd_per_unit": "0.15", "effective_from": local(400)},
    )
    credits_grant(user=alice, pool="studio", amount=500, key="g")
    files = {
        role: Upload.objects.create(
            owner=alice,
            kind=kind,
            file=f"uploads/{role}",
            original_name=role,
            content_type="application/octet-stream",
            size=1,
            duration=duration,
        )
        for role, kind, duration in [
            ("image", "image", None),
            ("left_audio", "audio", 2.0),
            ("right_audio", "audio", 7.0),
        ]
    }
    job = lifecycle.job_create(
        owner=alice, mode="dialog", provider="joypix", resolution="480p", files=files
    )
    assert (job.credits_per_unit, job.credits_held) == (15, 30)  # 2 units at 15

    # Staff cut the price in the admin, editing the very row the job was quoted from.
    rate = Rate.objects.get(provider="joypix", model="motion-2-dialog", resolution="480p")
    response = staff_client.post(
        reverse("admin:jobs_rate_change", args=[rate.pk]),
        {
            "provider": "joypix",
            "model": rate.model,
            "resolution": "480p",
            "unit_seconds": 5,
            "min_seconds": 0,
            "credits_per_unit": 5,
            "usd_per_unit": "0.05",
            "effective_from_0": rate.effective_from.strftime("%Y-%m-%d"),
            "effective_from_1": rate.effective_from.strftime("%H:%M:%S"),
            "note": "Cheaper",
        },
    )
    assert response.status_code == 302
    assert (
        lifecycle.job_quote(
            provider="joypix", mode="dialog", resolution="480p", seconds=7.0
        ).credits
        == 10
    )

    # The job finishes afterwards: it is settled at the rate it was quoted.
    Job.objects.filter(pk=job.pk).update(
        state=JobState.ARCHIVING, output_url=f"{provider.url}/out.mp4"
    )
    monkeypatch.setattr(
        lifecycle.media,
        "probe_output_video",
        lambda path: SimpleNamespace(duration=7.0, width=640, height=480),
    )
    lifecycle.job_archive(job.pk)

    job.refresh_from_db()
    assert (job.state, job.credits_per_unit, job.credits_charged) == (JobState.COMPLETED, 15, 30)
    assert LedgerEntry.objects.get(job=job, kind=EntryKind.CAPTURE).amount == 30
    assert credits_balances(user=alice)["studio"].balance == 470


# --- Under real concurrency (threads with their own connections) ------------------------


@pytest.mark.django_db(transaction=True)
def test_racing_refunds_of_one_job_post_one_refund(staff, alice, funded):
    job = completed(alice)
    results = run_together(8, lambda i: job_refund(job=job, by=staff, reason=f"Race {i}"))

    done = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, StaffActionRefused)]
    assert (len(done), len(refused)) == (1, 7), results
    assert LedgerEntry.objects.filter(kind=EntryKind.ADJUST).count() == 1
    assert credits_balances(user=alice)["studio"].balance == 1000 - 30 + 30


@pytest.mark.django_db(transaction=True)
def test_staff_and_the_pipeline_failing_one_job_release_its_hold_once(staff, alice, funded):
    job = processing(alice)

    def work(i):
        if i % 2:
            return lifecycle.job_fail(job, message="The provider reported a failure.")
        return job_fail_by_staff(job=job, by=staff, reason="Outage")

    results = run_together(8, work)
    assert not [
        r for r in results if isinstance(r, Exception) and not isinstance(r, StaffActionRefused)
    ], results
    assert LedgerEntry.objects.filter(job=job, kind=EntryKind.RELEASE).count() == 1
    assert credits_balances(user=alice)["studio"].held == 0
    job.refresh_from_db()
    assert job.state == JobState.FAILED and sent_once(job) == (1, "task-123")

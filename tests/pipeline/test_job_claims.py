"""One set of staged uploads makes exactly one job and one hold, however many
times and however fast the form is sent; and deleting a job never deletes a
file another job still uses.

Real concurrency: each thread has its own client and its own database
connection (SQLite serialises through IMMEDIATE transactions; PostgreSQL
through the staged uploads' row locks). CI runs this file on both.
"""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import EntryKind, Job, JobInput, LedgerEntry, Pool, Upload
from jobs.pipeline import lifecycle
from jobs.pipeline.inputs import input_link
from jobs.pipeline.retention import retention_purge
from jobs.studio import uploads as uploads_module
from jobs.studio.forms import new_form_token
from jobs.studio.uploads import upload_stage, uploads_purge_stale
from tests.media_factory import make_audio, make_image
from tests.pipeline_support import _seed_rates, ledger_check
from tests.threads_support import run_together

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10
DIALOG_COST = 15  # JoyPix 480p: the longer clip (3 s) is one 5 s unit


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("claims")
    return {
        "image": make_image(d / "two.jpg", 640, 480, fmt="jpeg"),
        "left_audio": make_audio(d / "left.mp3", 2.0),
        "right_audio": make_audio(d / "right.mp3", 3.0, tone_hz=330),
    }


@pytest.fixture
def funded(alice, media_root):
    _seed_rates()
    credits_grant(user=alice, pool=Pool.STUDIO, amount=300, key="grant:alice:claims")
    return alice


def stage(owner, sources) -> dict[str, Upload]:
    kinds = {"image": "image", "left_audio": "audio", "right_audio": "audio"}
    return {
        role: upload_stage(
            owner=owner,
            kind=kinds[role],
            uploaded=SimpleUploadedFile(path.name, path.read_bytes()),
        )
        for role, path in sources.items()
    }


def form_data(staged: dict[str, Upload], **extra) -> dict:
    return {
        "mode": "dialog",
        "provider": "joypix",
        "resolution": "480p",
        "prompt": "",
        "seed": "-1",
        **{f"{role}_upload": str(u.pk) for role, u in staged.items()},
    } | extra


def post_together(user, data_for, count: int, *, htmx: bool = False) -> list:
    """POST /studio/jobs/ from `count` threads released at once, each with its
    own signed-in client and connection. Returns each response."""
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    def signed_in(i: int) -> Client:
        client = Client(raise_request_exception=True)
        client.force_login(user)
        return client

    def post(i: int, client: Client):
        return client.post(reverse("job_new"), data_for(i), **headers)

    results = run_together(count, post, prepare=signed_in)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


def assert_one_job_one_hold(alice) -> Job:
    job = Job.objects.get()  # exactly one
    holds = LedgerEntry.objects.filter(kind=EntryKind.HOLD)
    assert list(holds.values_list("job_id", "amount")) == [(job.pk, DIALOG_COST)]
    assert credits_balances(user=alice)[Pool.STUDIO].available == 300 - DIALOG_COST
    assert job.inputs.count() == 3
    assert not Upload.objects.exists()
    assert "Ledger OK" in ledger_check()
    return job


def text(response) -> str:
    return response.content.decode()


# --- the same uploads, many posts -----------------------------------------------------


def test_the_same_form_sent_ten_times_at_once_makes_one_job_and_one_hold(funded, sources):
    staged = stage(funded, sources)
    data = form_data(staged, form_token=new_form_token())

    responses = post_together(funded, lambda i: data, THREADS)

    job = assert_one_job_one_hold(funded)
    made = [r for r in responses if r.status_code == 302]
    refused = [r for r in responses if r.status_code != 302]
    assert len(made) == 1 and len(refused) == THREADS - 1
    for response in refused:
        assert response.status_code == 409
        assert f"This form was already sent: it started job #{job.pk}" in text(response)
        assert "Nothing more was held." in text(response)


def test_the_same_uploads_from_ten_tabs_at_once_make_one_job_and_the_others_are_refused(
    funded, sources
):
    staged = stage(funded, sources)
    # Ten tabs: ten forms (tokens), all naming the same staged files.
    tokens = [new_form_token() for _ in range(THREADS)]

    responses = post_together(
        funded, lambda i: form_data(staged, form_token=tokens[i]), THREADS, htmx=True
    )

    job = assert_one_job_one_hold(funded)
    made = [r for r in responses if "is queued." in text(r)]
    assert [f"Job #{job.pk} is queued." in text(r) for r in made] == [True]
    for response in responses:
        if response in made:
            continue
        page = text(response)
        # Refused in the form, where the member is looking: either the claim
        # was lost inside the job's transaction, or the files had gone by the
        # time the form was checked.
        assert 'id="new-job-errors"' in page or "field--invalid" in page, page
        assert (
            "These files have just been used for another job" in page
            or "That file is no longer kept here: it went into a job" in page
        ), page


def test_without_a_form_token_ten_posts_still_make_one_job(funded, sources):
    """A hand-made request (no token) is still held to one job per upload set."""
    staged = stage(funded, sources)

    responses = post_together(funded, lambda i: form_data(staged), THREADS)

    assert_one_job_one_hold(funded)
    assert sorted(r.status_code for r in responses).count(302) == 1


def test_a_second_post_of_the_same_form_later_finds_the_first_job(funded, sources):
    """A double click that got past the browser: the second post arrives after
    the first has finished."""
    staged = stage(funded, sources)
    data = form_data(staged, form_token=new_form_token())
    client = Client()
    client.force_login(funded)

    first = client.post(reverse("job_new"), data)
    second = client.post(reverse("job_new"), data)

    job = assert_one_job_one_hold(funded)
    assert first.status_code == 302
    assert second.status_code == 409
    assert f"This form was already sent: it started job #{job.pk}" in text(second)
    # The refused form starts afresh: a new token, so fresh files make a new job.
    token = re.search(r'name="form_token" value="([0-9a-f]{32})"', text(second)).group(1)
    assert token != data["form_token"]


def test_a_claim_lost_inside_the_transaction_holds_nothing(funded, sources):
    """The form saw the uploads, but another job took one before this job's
    transaction: job_create refuses, and neither job nor hold is left."""
    staged = stage(funded, sources)
    Upload.objects.filter(pk=staged["left_audio"].pk).delete()  # taken meanwhile

    with pytest.raises(lifecycle.StagedUploadsGone):
        lifecycle.job_create(
            owner=funded, mode="dialog", provider="joypix", resolution="480p", files=staged
        )

    assert not Job.objects.exists()
    assert not LedgerEntry.objects.filter(kind=EntryKind.HOLD).exists()
    # The other two stay staged for the member.
    assert Upload.objects.count() == 2


def test_another_members_staged_upload_is_not_claimed(funded, bob, sources):
    staged = stage(bob, sources)

    with pytest.raises(lifecycle.StagedUploadsGone):
        lifecycle.job_create(
            owner=funded, mode="dialog", provider="joypix", resolution="480p", files=staged
        )

    assert not Job.objects.exists() and Upload.objects.count() == 3


def test_a_stale_purge_never_takes_an_upload_a_job_has_claimed(funded, sources, monkeypatch):
    """The purge read its list of day-old uploads just before a job claimed
    them (the race): deleting by that list must not take the job's files."""
    staged = stage(funded, sources)
    Upload.objects.update(created_at=timezone.now() - timedelta(days=2))
    read_before = list(Upload.objects.all())
    job = lifecycle.job_create(
        owner=funded, mode="dialog", provider="joypix", resolution="480p", files=staged
    )

    class PurgeReadEarlier:
        """Upload.objects as the purge saw it: the stale list read before the claim."""

        def filter(self, **lookups):
            if "created_at__lt" in lookups:
                return read_before
            return Upload._default_manager.filter(**lookups)

    monkeypatch.setattr(uploads_module.Upload, "objects", PurgeReadEarlier())
    assert uploads_purge_stale() == 0
    monkeypatch.undo()

    for inp in job.inputs.all():
        assert default_storage.exists(inp.file.name)
        assert default_storage.exists(inp.thumbnail.name) or not inp.thumbnail


# --- deleting never takes another job's files --------------------------------------------


def finished(job: Job) -> Job:
    lifecycle.job_fail(job, message="The provider refused this job: test")
    return Job.objects.get(pk=job.pk)


def test_try_again_copies_the_inputs_so_deleting_the_first_job_keeps_them(
    funded, sources, settings, client
):
    settings.PUBLIC_BASE_URL = "http://testserver"
    first = finished(
        lifecycle.job_create(
            owner=funded,
            mode="dialog",
            provider="joypix",
            resolution="480p",
            files=stage(funded, sources),
        )
    )
    retry = lifecycle.job_retry(first)
    first_names = {i.file.name for i in first.inputs.all()}
    retry_names = {i.file.name for i in retry.inputs.all()}
    assert first_names.isdisjoint(retry_names)  # copies, not the same files

    lifecycle.job_delete(Job.objects.get(pk=first.pk))

    assert not any(default_storage.exists(n) for n in first_names)
    for inp in retry.inputs.all():
        assert default_storage.exists(inp.file.name)
        response = client.get(input_link(inp).removeprefix("http://testserver"))
        assert response.status_code == 200


def test_deleting_a_job_keeps_a_file_another_job_still_points_at(funded, sources):
    """Jobs made before the fix may share files: the delete leaves a shared
    file in place for the job that still uses it."""
    one = finished(
        lifecycle.job_create(
            owner=funded,
            mode="dialog",
            provider="joypix",
            resolution="480p",
            files=stage(funded, sources),
        )
    )
    two = finished(
        lifecycle.job_create(
            owner=funded,
            mode="dialog",
            provider="joypix",
            resolution="480p",
            files=stage(funded, sources),
        )
    )
    shared = one.inputs.get(role="image").file.name
    JobInput.objects.filter(job=two, role="image").update(file=shared)
    own = one.inputs.get(role="left_audio").file.name

    lifecycle.job_delete(Job.objects.get(pk=one.pk))

    assert default_storage.exists(shared)  # two still uses it
    assert not default_storage.exists(own)  # one's own file went


def test_retention_keeps_a_file_another_job_still_points_at(funded, sources, settings):
    settings.INPUT_RETENTION_DAYS = 30
    old, new = (
        finished(
            lifecycle.job_create(
                owner=funded,
                mode="dialog",
                provider="joypix",
                resolution="480p",
                files=stage(funded, sources),
            )
        )
        for _ in range(2)
    )
    shared = old.inputs.get(role="image").file.name
    JobInput.objects.filter(job=new, role="image").update(file=shared)
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=31))

    retention_purge()

    assert default_storage.exists(shared)


def test_an_input_link_whose_file_is_gone_answers_404_not_500(funded, sources, client, settings):
    settings.PUBLIC_BASE_URL = "http://testserver"
    job = lifecycle.job_create(
        owner=funded,
        mode="dialog",
        provider="joypix",
        resolution="480p",
        files=stage(funded, sources),
    )
    inp = job.inputs.get(role="image")
    default_storage.delete(inp.file.name)

    response = client.get(input_link(inp).removeprefix("http://testserver"))

    assert response.status_code == 404

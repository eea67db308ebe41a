import re
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_grant
from jobs.credits.pricing import NoRate, billed_units, quote, terms_text
from jobs.models import Job, JobState, Rate, Upload
from jobs.pipeline import lifecycle
from tests.factories import make_uploads
from tests.fetch_support import LoopbackServer


@pytest.mark.parametrize(
    ("seconds", "units"),
    [
        (0.4, 1),
        (4.99, 1),
        (5.0, 1),
        (5.001, 2),
        (10.0, 2),
        (10.0000001, 2),
        (599.9, 120),
        (600.0, 120),
    ],
)
def test_it_bills_per_started_five_seconds(seconds, units):
    assert billed_units(seconds, unit_seconds=5) == units


@pytest.mark.django_db
def test_joypix_rates_are_seeded_from_the_provider_page():
    q480 = quote(provider="joypix", model="motion-2-dialog", resolution="480p", seconds=12.3)
    q720 = quote(provider="joypix", model="motion-2-dialog", resolution="720p", seconds=12.3)
    assert (q480.units, q480.credits, q480.usd) == (3, 45, Decimal("0.45"))
    assert (q720.units, q720.credits, q720.usd) == (3, 90, Decimal("0.90"))
    assert q480.billed_seconds == 15


@pytest.mark.django_db
def test_a_new_rate_applies_from_its_start_and_not_before():
    Rate.objects.create(
        provider="joypix",
        model="motion-2-dialog",
        resolution="480p",
        credits_per_unit=20,
        usd_per_unit=Decimal("0.20"),
        effective_from=timezone.now() + timezone.timedelta(days=1),
    )
    assert (
        quote(provider="joypix", model="motion-2-dialog", resolution="480p", seconds=5).credits
        == 15
    )


@pytest.mark.django_db
def test_an_unpriced_combination_is_refused():
    with pytest.raises(NoRate):
        quote(provider="joypix", model="motion-2-dialog", resolution="1080p", seconds=5)


# --- lipsync.studio: per second, at least 5 s (../shared/provider-facts.md) ----------------

LIPSYNC_MODELS = ["lipsync-image", "lipsync-image-multi", "lipsync-video"]


@pytest.mark.django_db
@pytest.mark.parametrize("model", LIPSYNC_MODELS)
@pytest.mark.parametrize(
    ("resolution", "seconds", "billed", "credits", "usd"),
    [
        ("480p", 3.0, 5, 10, "0.10"),  # under the 5 s minimum
        ("720p", 3.0, 5, 20, "0.20"),  # the page's example: 5 x 4
        ("480p", 10.0, 10, 20, "0.20"),  # the page's example: 10 x 2
        ("720p", 10.0, 10, 40, "0.40"),
        ("480p", 10.2, 11, 22, "0.22"),  # a part of a second is rounded up
        ("720p", 10.2, 11, 44, "0.44"),
        ("480p", 10.0000001, 10, 20, "0.20"),  # float noise is not a second
    ],
)
def test_lipsync_studio_is_priced_per_second_with_a_five_second_minimum(
    model, resolution, seconds, billed, credits, usd
):
    q = quote(provider="lipsync_studio", model=model, resolution=resolution, seconds=seconds)
    assert (q.unit_seconds, q.min_seconds) == (1, 5)
    assert (q.billed_seconds, q.credits, q.usd) == (billed, credits, Decimal(usd))
    assert q.minimum_applies == (seconds < 5)
    assert q.rounded_up == (seconds == 10.2)


@pytest.mark.django_db
def test_joypix_has_no_minimum_beyond_its_one_unit():
    q = quote(provider="joypix", model="motion-2-dialog", resolution="720p", seconds=3.0)
    assert (q.unit_seconds, q.min_seconds, q.billed_seconds, q.credits) == (5, 0, 5, 30)
    assert not q.minimum_applies and q.rounded_up


@pytest.mark.parametrize(
    ("seconds", "unit", "minimum", "units"),
    [
        (3.0, 1, 5, 5),
        (5.0, 1, 5, 5),
        (5.001, 1, 5, 6),
        (0.2, 1, 0, 1),  # no minimum: still one unit
        (3.0, 5, 10, 2),  # a minimum longer than a unit
        (12.0, 5, 10, 3),
    ],
)
def test_units_are_started_units_never_under_the_minimum(seconds, unit, minimum, units):
    assert billed_units(seconds, unit_seconds=unit, min_seconds=minimum) == units


@pytest.mark.parametrize(
    ("credits", "unit", "minimum", "text"),
    [
        (15, 5, 0, "15 credits per 5 s"),
        (4, 1, 5, "4 credits per second, 5 s minimum"),
        (1, 1, 0, "1 credit per second"),
        (30, 5, 5, "30 credits per 5 s"),  # a minimum of one unit goes without saying
    ],
)
def test_a_rate_reads_naturally_for_each_unit(credits, unit, minimum, text):
    assert terms_text(credits_per_unit=credits, unit_seconds=unit, min_seconds=minimum) == text


@pytest.mark.django_db
def test_the_placeholder_rates_stay_in_the_history_behind_the_real_ones():
    """Migration 0010 adds rows; 0005's placeholders are kept, and are older."""
    rows = list(
        Rate.objects.filter(
            provider="lipsync_studio", model="lipsync-image", resolution="720p"
        ).order_by("effective_from")
    )
    assert [(r.unit_seconds, r.min_seconds, r.credits_per_unit) for r in rows] == [
        (5, 0, 30),
        (1, 5, 4),
    ]
    assert rows[0].effective_from < rows[1].effective_from <= timezone.now()
    assert "$0.01 a credit" in rows[1].note


@pytest.mark.django_db
def test_the_admin_lists_both_rates_with_their_minimum(client, staff):
    client.force_login(staff)
    page = client.get(
        reverse("admin:jobs_rate_changelist"), {"provider": "lipsync_studio", "resolution": "720p"}
    ).content.decode()
    assert "Min seconds" in page
    rows = re.findall(r'<td class="field-model">lipsync-image-multi</td>.*?</tr>', page)
    cells = [
        re.findall(r'class="field-(credits_per_unit|unit_seconds|min_seconds)">(\d+)<', row)
        for row in rows
    ]
    # Newest first: the real price, then the placeholder it replaced.
    assert [dict(c) for c in cells] == [
        {"credits_per_unit": "4", "unit_seconds": "1", "min_seconds": "5"},
        {"credits_per_unit": "30", "unit_seconds": "5", "min_seconds": "0"},
    ]
    assert "From lipsync.studio&#x27;s API page" in rows[0]
    assert "Placeholder: lipsync.studio publishes no per-second price" in rows[1]


def staged_talking_photo(owner, seconds: float) -> dict[str, Upload]:
    """Staged uploads as the form leaves them (no files: nothing is sent here)."""
    return make_uploads(owner, {"image": ("image", None), "audio": ("audio", seconds)})


def archive_measuring(monkeypatch, job: Job, seconds: float, *, output_url: str) -> Job:
    """Settle `job` as if the provider's video, downloaded from `output_url`,
    lasted `seconds`."""
    Job.objects.filter(pk=job.pk).update(state=JobState.ARCHIVING, output_url=output_url)
    monkeypatch.setattr(
        lifecycle.media,
        "probe_output_video",
        lambda path: SimpleNamespace(duration=seconds, width=1280, height=720),
    )
    lifecycle.job_archive(job.pk)
    return Job.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_a_job_quoted_on_the_placeholder_rate_is_settled_on_it(
    alice, settings, tmp_path, monkeypatch, serve
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # The provider's output, downloaded for real from a loopback server.
    settings.FETCH_ALLOW_LOOPBACK = True
    provider = serve(LoopbackServer.body(b"mp4 bytes"))
    credits_grant(user=alice, pool="studio", amount=500, key="g")
    real = Rate.objects.filter(provider="lipsync_studio", min_seconds=5)
    started = real.first().effective_from
    # Before migration 0010's rows took effect, a 3 s clip at 720p was one 5 s unit at 30.
    real.update(effective_from=timezone.now() + timedelta(days=1))
    old = lifecycle.job_create(
        owner=alice,
        mode="talking_photo",
        provider="lipsync_studio",
        resolution="720p",
        files=staged_talking_photo(alice, 3.0),
    )
    assert (old.unit_seconds, old.min_seconds, old.credits_per_unit, old.credits_held) == (
        5,
        0,
        30,
        30,
    )

    real.update(effective_from=started)  # the real prices are in force
    new = lifecycle.job_create(
        owner=alice,
        mode="talking_photo",
        provider="lipsync_studio",
        resolution="720p",
        files=staged_talking_photo(alice, 3.0),
    )
    assert (new.unit_seconds, new.min_seconds, new.credits_per_unit, new.credits_held) == (
        1,
        5,
        4,
        20,
    )

    # Each is charged on the terms it was quoted, for the same 3 s video.
    out = f"{provider.url}/out.mp4"
    assert archive_measuring(monkeypatch, old, 3.0, output_url=out).credits_charged == 30
    # The 5 s minimum.
    assert archive_measuring(monkeypatch, new, 3.0, output_url=out).credits_charged == 20
    assert len(provider.seen) == 2

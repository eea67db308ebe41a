"""What a member can see and do about where each job is (issue 13): "Stop
waiting" on an overdue job, the warning before trying again a job whose
outcome is unknown, provider states as they are (waiting in JoyPix's line,
a place in the studio's), the render time beside the cost, the first run
with no credits, and "You made this already" before paying twice."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_balances, credits_grant
from jobs.models import EntryKind, FailureCode, Job, LedgerEntry
from tests.factories import make_job
from tests.studio.test_studio_form import files, form_data, stage_all, staged_id, upload

pytestmark = pytest.mark.django_db

__all__ = ["files"]  # the fixture, shared with the form's tests


def card_html(html: str, pk: int) -> str:
    start = html.index(f'id="job-{pk}"')
    return html[start : html.index("</article>", start)]


@pytest.fixture
def overdue(settings, alice):
    settings.SANDBOX_RTF = 1.0  # 7 s of audio, 7 s expected: overdue from 10.5 s
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice:overdue")
    return make_job(
        alice,
        state="processing",
        created=timezone.now() - timedelta(seconds=30),
        submitted_after=timedelta(seconds=1),
    )


# --- Stop waiting ----------------------------------------------------------------------


def test_an_overdue_card_offers_stop_waiting_and_says_what_it_means(alice_client, overdue):
    card = card_html(alice_client.get(reverse("studio")).content.decode(), overdue.pk)

    assert re.search(r'<div class="stop-waiting" data-reveal-at="\d+">', card)  # not hidden
    assert "Stop waiting" in card
    assert "releases the 30 held credits now" in card
    assert "JoyPix may still finish it; a late video is then ignored and not charged." in card


def test_a_card_not_yet_overdue_holds_the_button_back_until_its_time(settings, alice_client, alice):
    settings.SANDBOX_RTF = 1.0
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice:fresh")
    job = make_job(alice, state="processing", submitted_after=timedelta(0))

    card = card_html(alice_client.get(reverse("studio")).content.decode(), job.pk)

    reveal = re.search(r'data-reveal-at="(\d+)" hidden', card)
    assert reveal, card
    # 1.5 x 7 s after it was sent.
    assert int(reveal.group(1)) == int(
        (job.submitted_at + timedelta(seconds=10.5)).timestamp() * 1000
    )


def test_stop_waiting_from_the_card_releases_the_credits_and_shows_why(
    alice_client, alice, overdue
):
    response = alice_client.post(
        reverse("job_stop_waiting", args=[overdue.pk]), HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    card = card_html(html, overdue.pk)
    assert "job-card--failed" in html
    assert "Stopped waiting by alice" in card and "JoyPix may still finish this video" in card
    assert "Stop waiting" not in card.replace("Stopped waiting", "")
    assert "Stopped waiting for job" in html  # announced
    assert 'id="balances"' in html and "100 credits" in html
    job = Job.objects.get(pk=overdue.pk)
    assert (job.failure_code, job.stopped_by) == (FailureCode.STOPPED_WAITING, alice)
    assert credits_balances(user=alice)["studio"].available == 100


def test_another_member_cannot_stop_waiting_for_my_job(client, bob, overdue):
    client.force_login(bob)

    response = client.post(reverse("job_stop_waiting", args=[overdue.pk]))

    assert response.status_code == 404
    assert Job.objects.get(pk=overdue.pk).state == "processing"


def test_stop_waiting_without_javascript_says_so_on_the_next_page(alice_client, overdue):
    response = alice_client.post(reverse("job_stop_waiting", args=[overdue.pk]), follow=True)

    assert "You stopped waiting for job" in response.content.decode()
    assert Job.objects.get(pk=overdue.pk).state == "failed"


# --- Try again after an unknown outcome ------------------------------------------------------


def test_try_again_after_lost_contact_or_stop_waiting_warns_the_first_may_still_render(
    alice_client, alice
):
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice:lost")
    lost = make_job(
        alice,
        state="failed",
        finished_after=timedelta(0),
        error="The studio lost contact while sending this job.",
        failure_code=FailureCode.OUTCOME_UNKNOWN,
    )
    refused = make_job(
        alice, state="failed", finished_after=timedelta(0), error="The provider refused the photo."
    )
    stopped = make_job(
        alice,
        state="failed",
        finished_after=timedelta(0),
        error="Stopped waiting by alice.",
        failure_code=FailureCode.STOPPED_WAITING,
    )

    html = alice_client.get(reverse("studio")).content.decode()

    warning = "The first request may still be rendering at JoyPix and cost credits there"
    assert warning in card_html(html, lost.pk)
    assert warning in card_html(html, stopped.pk)
    assert "hx-confirm" in card_html(html, lost.pk)
    assert warning not in card_html(html, refused.pk)


# --- provider states as they are -------------------------------------------------------------


def test_a_job_waiting_in_joypixs_line_is_not_called_rendering(alice_client, alice, overdue):
    Job.objects.filter(pk=overdue.pk).update(provider_state="pending")

    card = card_html(alice_client.get(reverse("studio")).content.decode(), overdue.pk)

    assert ">Waiting at JoyPix</span>" in card
    assert "Waiting in JoyPix’s line · sent" in card
    assert "Rendering" not in card
    assert "data-progress-start" not in card


def test_a_queued_job_shows_its_place_in_line(alice_client, alice, bob):
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice:line")
    credits_grant(user=bob, pool="studio", amount=100, key="grant:bob:line")
    make_job(bob)
    make_job(bob)
    mine = make_job(alice)

    card = card_html(alice_client.get(reverse("studio")).content.decode(), mine.pk)

    assert "Waiting to be sent · 3rd in line" in card


def test_the_next_queued_job_shows_no_line(alice_client, alice):
    credits_grant(user=alice, pool="studio", amount=100, key="grant:alice:next")
    job = make_job(alice)

    card = card_html(alice_client.get(reverse("studio")).content.decode(), job.pk)

    assert "in line" not in card and "Waiting to be sent to the provider." in card


# --- time before paying --------------------------------------------------------------------


def test_the_quote_shows_the_render_time_and_both_providers_for_a_dialog(
    settings, funded_alice_client, files, media_root
):
    settings.SANDBOX_RTF = 15.0  # as a real provider at 480p
    left = staged_id(upload(funded_alice_client, "left_audio", files["left"]), "left_audio")
    right = staged_id(upload(funded_alice_client, "right_audio", files["right"]), "right_audio")

    html = funded_alice_client.post(
        reverse("studio_quote"),
        {"mode": "dialog", "provider": "joypix", "resolution": "480p"}
        | {"left_audio_upload": left, "right_audio_upload": right},
    ).content.decode()

    # 6.1 s, the longer clip, at 15 s of work per second: about 1 min 32 s.
    assert "Ready in about 1 min 32 s once JoyPix starts it." in html
    table = html[html.index('<table class="quote-options">') : html.index("</table>")]
    rows = re.findall(
        r"<tr[^>]*>\s*<th scope=\"row\">(.*?)</th>\s*<td[^>]*>(.*?)</td>", table, re.S
    )
    labels = [" ".join(re.sub(r"<[^>]+>", " ", label).split()) for label, _cost in rows]
    assert labels == ["JoyPix (chosen)", "lipsync.studio"]
    assert "30 credits" in rows[0][1]
    assert table.count("about 1 min 32 s") == 2


def test_a_talking_photo_quote_has_the_time_and_no_comparison(
    settings, funded_alice_client, files, media_root
):
    settings.SANDBOX_RTF = 25.0
    audio = staged_id(
        upload(funded_alice_client, "audio", files["left"], mode="talking_photo"), "audio"
    )

    html = funded_alice_client.post(
        reverse("studio_quote"),
        {"mode": "talking_photo", "provider": "lipsync_studio", "resolution": "720p"}
        | {"audio_upload": audio},
    ).content.decode()

    assert "Ready in about 1 min 20 s once lipsync.studio starts it." in html  # 3.2 s x 25
    assert "quote-options" not in html


# --- the first run ----------------------------------------------------------------------------


def test_staff_with_no_credits_are_offered_starter_credits_not_told_to_ask_staff(staff_client):
    html = staff_client.get(reverse("studio")).content.decode()

    assert "You have no studio credits yet." in html
    assert "Grant myself 1,000 credits" in html
    assert "Ask staff" not in html


def test_one_click_grants_starter_credits_through_the_admins_service(staff_client, staff, settings):
    settings.STARTER_CREDITS = 250
    page = staff_client.get(reverse("studio")).content.decode()
    assert 'name="starter_after" value="0"' in page

    first = staff_client.post(
        reverse("studio_starter_credits"),
        {"mode": "dialog", "starter_after": "0"},
        HTTP_HX_REQUEST="true",
    )

    html = first.content.decode()
    assert "You granted yourself 250 studio credits." in html
    assert "You have no studio credits yet." not in html
    assert 'id="balances"' in html and "250 credits" in html
    [grant] = LedgerEntry.objects.filter(kind=EntryKind.GRANT)
    assert (grant.amount, grant.created_by) == (250, staff)
    assert grant.reason == "Starter credits, granted to themselves from the Studio"
    # Logged in the member's admin history, as any staff grant is.
    assert LogEntry.objects.filter(object_id=str(staff.pk)).count() == 1


def test_the_same_pages_button_sent_twice_grants_once(staff_client, staff, settings):
    settings.STARTER_CREDITS = 100
    url = reverse("studio_starter_credits")

    staff_client.post(url, {"starter_after": "0"})
    staff_client.post(url, {"starter_after": "0"})

    assert credits_balances(user=staff)["studio"].available == 100
    # Spent and shown afresh, the page's button grants again.
    after = LedgerEntry.objects.get().pk
    staff_client.post(url, {"starter_after": str(after)})
    assert credits_balances(user=staff)["studio"].available == 200


def test_a_member_who_is_not_staff_sees_whom_to_ask_and_cannot_grant(client, bob, staff):
    client.force_login(bob)

    html = client.get(reverse("studio")).content.decode()

    assert "You have no studio credits yet." in html
    assert f"Ask {staff.get_full_name() or staff.username} for some" in html
    assert "Grant myself" not in html
    response = client.post(
        reverse("studio_starter_credits"), {"starter_after": "0"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert credits_balances(user=bob)["studio"].available == 0


def test_a_short_quote_names_the_staff_to_ask(client, bob, staff, files, media_root):
    client.force_login(bob)
    credits_grant(user=bob, pool="studio", amount=20, key="test:bob:20")
    left = staged_id(upload(client, "left_audio", files["left"]), "left_audio")
    right = staged_id(upload(client, "right_audio", files["right"]), "right_audio")

    html = client.post(
        reverse("studio_quote"),
        {"mode": "dialog", "provider": "joypix", "resolution": "480p"}
        | {"left_audio_upload": left, "right_audio_upload": right},
    ).content.decode()

    assert f"Ask {staff.get_full_name()} for more." in html


# --- nothing paid twice by accident ------------------------------------------------------------


def test_the_same_files_and_options_again_need_a_second_yes(
    funded_alice_client, alice, files, media_root
):
    first = funded_alice_client.post(
        reverse("job_new"),
        form_data(**stage_all(funded_alice_client, files)),
        HTTP_HX_REQUEST="true",
    )
    assert "is queued." in first.content.decode()
    earlier = Job.objects.get()

    # The same files, uploaded again (new names, same bytes), the same options.
    again = form_data(**stage_all(funded_alice_client, files))
    warned = funded_alice_client.post(reverse("job_new"), again, HTTP_HX_REQUEST="true")

    html = warned.content.decode()
    assert f"You made this already (job #{earlier.pk}):" in html
    assert f'href="/jobs/{earlier.pk}/">open it</a>, or make it again.' in html
    assert f'name="make_again" value="{earlier.pk}"' in html
    assert Job.objects.count() == 1
    assert credits_balances(user=alice)["studio"].available == 70
    # The files stay staged for the second yes.
    for role in ("image", "left_audio", "right_audio"):
        assert f'name="{role}_upload" value="{again[f"{role}_upload"]}"' in html

    made = funded_alice_client.post(
        reverse("job_new"), again | {"make_again": str(earlier.pk)}, HTTP_HX_REQUEST="true"
    )

    assert "is queued." in made.content.decode()
    assert Job.objects.count() == 2
    assert credits_balances(user=alice)["studio"].available == 40


def test_a_confirmation_naming_another_job_is_not_a_yes(
    funded_alice_client, alice, files, media_root
):
    funded_alice_client.post(
        reverse("job_new"),
        form_data(**stage_all(funded_alice_client, files)),
        HTTP_HX_REQUEST="true",
    )
    again = form_data(**stage_all(funded_alice_client, files)) | {"make_again": "999999"}

    response = funded_alice_client.post(reverse("job_new"), again)

    assert response.status_code == 409
    assert "You made this already" in response.content.decode()
    assert Job.objects.count() == 1


def test_other_options_or_a_failed_earlier_job_are_not_repeats(
    funded_alice_client, alice, files, media_root
):
    funded_alice_client.post(
        reverse("job_new"),
        form_data(**stage_all(funded_alice_client, files)),
        HTTP_HX_REQUEST="true",
    )
    other_seed = form_data(**stage_all(funded_alice_client, files)) | {"seed": "7"}
    assert (
        "is queued."
        in funded_alice_client.post(
            reverse("job_new"), other_seed, HTTP_HX_REQUEST="true"
        ).content.decode()
    )

    Job.objects.update(state="failed", finished_at=timezone.now())
    same = form_data(**stage_all(funded_alice_client, files))
    response = funded_alice_client.post(reverse("job_new"), same, HTTP_HX_REQUEST="true")

    assert "is queued." in response.content.decode()
    assert Job.objects.count() == 3


def test_places_in_line_cost_no_query_per_queued_card(alice_client, alice, bob):
    credits_grant(user=alice, pool="studio", amount=1000, key="grant:alice:many")
    credits_grant(user=bob, pool="studio", amount=100, key="grant:bob:many")
    make_job(bob)
    make_job(alice)
    alice_client.get(reverse("studio"))  # warm: sessions, rates
    with CaptureQueriesContext(connection) as two:
        alice_client.get(reverse("studio"))
    for _ in range(5):
        make_job(alice)

    with CaptureQueriesContext(connection) as seven:
        html = alice_client.get(reverse("studio")).content.decode()

    assert len(seven) == len(two)
    assert "Waiting to be sent · 7th in line" in html


def test_staff_short_of_credits_but_not_out_are_pointed_to_the_admins_grant(
    staff_client, staff, files, media_root
):
    credits_grant(user=staff, pool="studio", amount=20, key="test:staff:20")
    left = staged_id(upload(staff_client, "left_audio", files["left"]), "left_audio")
    right = staged_id(upload(staff_client, "right_audio", files["right"]), "right_audio")

    html = staff_client.post(
        reverse("studio_quote"),
        {"mode": "dialog", "provider": "joypix", "resolution": "480p"}
        | {"left_audio_upload": left, "right_audio_upload": right},
    ).content.decode()

    assert "this needs 30, you have 20 available." in html
    assert (
        f'href="/admin/auth/user/{staff.pk}/credits/">grant yourself more in the admin</a>' in html
    )
    assert "(above)" not in html

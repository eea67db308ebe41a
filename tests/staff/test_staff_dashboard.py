"""The staff dashboard: figures for a known set of entries and jobs, the
period they cover, the ledger CSV, and who may see them."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_adjust
from jobs.models import JobState
from jobs.staff.actions import job_refund
from jobs.staff.dashboard import figures
from jobs.staff.dashboard.chart import nice_ceiling, spend_chart
from jobs.staff.dashboard.ledger_csv import CSV_HEADER
from jobs.staff.dashboard.period import Period, PeriodForm
from tests.factories import at, make_job
from tests.staff_support import grant, local

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:jobs_job_dashboard")
CSV = reverse("admin:jobs_job_ledger_csv")
MIN = timedelta(minutes=1)


@pytest.fixture
def team(alice, bob, staff):
    """A month of activity whose figures are worked out by hand below."""
    grant(alice, 1000, local(10))
    grant(alice, 200, local(3), pool="api")
    grant(bob, 500, local(40))  # before the default period
    grant(bob, 300, local(1, 9))
    at(
        credits_adjust(user=alice, pool="studio", amount=-100, key="fix", reason="Correction"),
        local(1),
    )
    done = {"state": JobState.COMPLETED}
    jobs = {
        # joypix: two completed (10 and 20 min end to end; 4 and 6 min at the provider)
        "a": make_job(alice, **done, created=local(5, 10), held=30, submitted_after=MIN,
                      provider_done_after=5 * MIN, finished_after=10 * MIN),
        "b": make_job(alice, **done, created=local(2, 10), held=45, submitted_after=MIN,
                      provider_done_after=7 * MIN, finished_after=20 * MIN),
        # one failed after it was sent, one cancelled before
        "d": make_job(bob, state=JobState.FAILED, created=local(4), held=15,
                      finished_after=3 * MIN),
        "e": make_job(bob, state=JobState.FAILED, created=local(4, 13), held=15,
                      finished_after=MIN, submit_attempts=0),
        # lipsync_studio: one completed from the API pool, one still processing
        "c": make_job(alice, provider="lipsync_studio", **done, created=local(3, 11), held=20,
                      pool="api", submitted_after=MIN, provider_done_after=2 * MIN,
                      finished_after=3 * MIN),
        "f": make_job(bob, provider="lipsync_studio", state=JobState.PROCESSING,
                      created=local(0, 0, 5), held=60, submitted_after=MIN),
        # long ago: outside the default period
        "old": make_job(bob, **done, created=local(38), held=30, finished_after=MIN),
    }  # fmt: skip
    refund = job_refund(job=jobs["b"], by=staff, reason="Garbled audio").entry
    at(refund, local(1, 15))
    return jobs


def by_member(d) -> dict:
    return {
        (r.username, r.pool): (r.granted, r.adjusted, r.refunded, r.spent, r.net_spent)
        for r in d.credits
    }


# --- The figures ------------------------------------------------------------------------


def test_credits_per_member_and_pool_over_the_last_thirty_days(team):
    d = figures.dashboard(Period.last())

    assert by_member(d) == {
        ("alice", "api"): (200, 0, 0, 20, 20),
        ("alice", "studio"): (1000, -100, 45, 75, 30),
        ("bob", "studio"): (300, 0, 0, 0, 0),
    }
    pools = {p.pool: (p.granted, p.adjusted, p.refunded, p.spent, p.members) for p in d.pools}
    assert pools == {"studio": (1300, -100, 45, 75, 2), "api": (200, 0, 0, 20, 1)}
    assert (d.granted, d.spent, d.refunded) == (1500, 95, 45)


def test_spend_per_day_has_every_day_and_each_pool(team):
    d = figures.dashboard(Period.last())

    assert len(d.days) == 30
    assert d.days[-1].day == timezone.localdate()
    spent = {day.day: (day.studio, day.api) for day in d.days if day.total}
    today = timezone.localdate()
    assert spent == {
        today - timedelta(days=5): (30, 0),
        today - timedelta(days=3): (0, 20),
        today - timedelta(days=2): (45, 0),
    }
    assert d.busiest_day.day == today - timedelta(days=2)


def test_the_chart_draws_one_stacked_bar_per_pool_and_day_on_a_round_scale():
    days = [
        figures.DaySpend(day=date(2025, 3, 1), by_pool={"studio": 30, "api": 15}),
        figures.DaySpend(day=date(2025, 3, 2), by_pool={"studio": 0, "api": 0}),
        figures.DaySpend(day=date(2025, 3, 3), by_pool={"studio": 90, "api": 0}),
    ]
    chart = spend_chart(days, width=400, height=200)

    assert [t.value for t in chart.ticks] == [0, 25, 50, 75, 100]
    assert [(b.pool, b.value) for b in chart.bars] == [("studio", 30), ("api", 15), ("studio", 90)]
    studio, api, tall = chart.bars
    assert api.y + api.height == pytest.approx(studio.y)  # stacked on the studio bar
    assert studio.y + studio.height == pytest.approx(chart.baseline)
    assert tall.height == pytest.approx(chart.plot_height * 0.9)
    assert [label.text for label in chart.labels] == ["1 Mar", "2 Mar", "3 Mar"]


@pytest.mark.parametrize(
    ("value", "top", "step"), [(0, 4, 1), (7, 8, 2), (95, 100, 25), (1234, 2000, 500)]
)
def test_the_axis_ends_on_a_round_number(value, top, step):
    assert nice_ceiling(value) == (top, step)


def test_jobs_per_provider_and_state(team):
    d = figures.dashboard(Period.last())

    assert {row.provider: row.by_state for row in d.jobs} == {
        "joypix": {"completed": 2, "failed": 2},
        "lipsync_studio": {"completed": 1, "processing": 1},
    }
    assert d.jobs_total.total == 6
    assert d.jobs_total.counts == [0, 0, 1, 0, 3, 2]  # in JobState order


def test_failure_rate_and_average_times_per_provider(team):
    d = figures.dashboard(Period.last())
    stats = {s.provider: s for s in d.providers}

    joypix = stats["joypix"]
    assert (joypix.completed, joypix.failed, joypix.cancelled) == (2, 1, 1)
    assert joypix.failure_rate == pytest.approx(1 / 3)
    assert joypix.failure_rate_text == "33.3 %"
    assert joypix.avg_to_complete == timedelta(minutes=15)
    assert joypix.avg_at_provider == timedelta(minutes=5)
    assert joypix.avg_to_complete_text == "15 min 00 s"

    studio = stats["lipsync_studio"]  # the processing job has not ended
    assert (studio.completed, studio.failed, studio.failure_rate) == (1, 0, 0.0)
    assert studio.avg_to_complete == timedelta(minutes=3)
    assert d.failure_rate == pytest.approx(1 / 4)


def test_open_holds_are_listed_with_their_jobs(team):
    holds = figures.dashboard(Period.last()).holds

    assert (holds.count, holds.total, holds.more) == (1, 60, 0)
    (hold,) = holds.entries
    assert (hold.job, hold.account.user.username, hold.amount) == (team["f"], "bob", 60)


def test_open_holds_show_the_oldest_and_count_them_all(alice):
    grant(alice, 1000, local(1))
    for n in range(4):
        make_job(alice, state=JobState.QUEUED, created=local(0, n), held=10)
    holds = figures.open_holds_summary(limit=3)
    assert (holds.count, holds.total, holds.more) == (4, 40, 1)
    assert [h.created_at for h in holds.entries] == [local(0, 0), local(0, 1), local(0, 2)]


def test_a_chosen_period_counts_only_its_own_days(team):
    start = timezone.localdate() - timedelta(days=40)
    period = Period(start=start, end=start + timedelta(days=5))
    d = figures.dashboard(period)

    assert by_member(d) == {("bob", "studio"): (500, 0, 0, 30, 30)}
    assert [row.provider for row in d.jobs] == ["joypix"]
    assert d.jobs_total.by_state == {"completed": 1}
    assert len(d.days) == 6 and sum(day.total for day in d.days) == 30
    assert d.holds.count == 1  # open holds are "now", whatever the period


def test_days_are_the_sites_local_days(settings, alice):
    settings.TIME_ZONE = "America/New_York"
    grant(alice, 100, local(3))
    job = make_job(alice, state=JobState.COMPLETED, created=local(2, 23, 30), held=15,
                   finished_after=timedelta(minutes=10))  # fmt: skip
    # 23:40 in New York is the next day in UTC: the spend stays on the local day.
    assert job.finished_at.astimezone(timezone.UTC).date() == timezone.localdate() - timedelta(
        days=1
    )
    d = figures.dashboard(Period.last())
    assert {day.day: day.total for day in d.days if day.total} == {
        timezone.localdate() - timedelta(days=2): 15
    }


def test_an_empty_database_gives_zeros_not_errors(db):
    d = figures.dashboard(Period.last(7))
    assert (d.credits, d.jobs, d.providers, d.holds.count) == ([], [], [], 0)
    assert [t.value for t in d.chart.ticks] == [0, 1, 2, 3, 4]
    assert (d.failure_rate_text, d.busiest_day) == ("—", None)


# --- The page ---------------------------------------------------------------------------


def test_staff_see_the_dashboard_with_its_chart_and_tables(client, staff, team):
    client.force_login(staff)
    response = client.get(DASHBOARD)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg class="chart"' in html and 'role="img"' in html
    assert '<title id="chart-title">Credits spent per day' in html
    assert "Spend per day as a table" in html
    assert html.count('class="bar-studio"') == 2 and html.count('class="bar-api"') == 1
    assert "33.3 %" in html and "15 min 00 s" in html
    assert reverse("admin:jobs_job_change", args=[team["f"].pk]) in html
    assert f"{CSV}?{Period.last().query()}".replace("&", "&amp;") in html


def test_the_admin_index_links_to_the_dashboard(client, staff):
    client.force_login(staff)
    html = client.get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in html
    assert 'href="/admin/auth/user/"' in html  # the apps are still listed


def test_the_period_comes_from_the_date_inputs(client, staff, team):
    client.force_login(staff)
    start = timezone.localdate() - timedelta(days=40)
    response = client.get(DASHBOARD, {"start": start, "end": start + timedelta(days=5)})
    d = response.context["d"]
    assert (d.period.start, len(d.days)) == (start, 6)
    assert by_member(d) == {("bob", "studio"): (500, 0, 0, 30, 30)}


def test_a_period_that_ends_before_it_starts_is_explained_and_the_default_shown(client, staff):
    client.force_login(staff)
    today = timezone.localdate()
    response = client.get(DASHBOARD, {"start": today, "end": today - timedelta(days=3)})

    assert response.status_code == 200
    assert response.context["d"].period == Period.last()
    html = response.content.decode()
    assert "The end comes before the start." in html
    assert 'aria-invalid="true" aria-describedby="id_end-error"' in html


def test_a_period_longer_than_a_year_is_refused():
    today = timezone.localdate()
    form = PeriodForm({"start": today - timedelta(days=400), "end": today})
    assert not form.is_valid() and "at most 366 days" in str(form.errors)


def test_the_dashboard_answers_in_a_fixed_number_of_queries(client, staff, team, alice, bob):
    client.force_login(staff)
    client.get(DASHBOARD)  # warm the content type cache
    with CaptureQueriesContext(connection) as few:
        client.get(DASHBOARD)
    for n in range(20):
        owner = alice if n % 2 else bob
        grant(owner, 100, local(n % 25))
        make_job(owner, state=JobState.COMPLETED, created=local(n % 25, 8), held=15,
                 finished_after=MIN)  # fmt: skip
        make_job(owner, state=JobState.PROCESSING, created=local(n % 25, 9), held=15)
    with CaptureQueriesContext(connection) as many:
        response = client.get(DASHBOARD)
    assert response.context["d"].holds.count == 21
    assert len(many) == len(few) <= 13, "\n".join(q["sql"] for q in many)
    with CaptureQueriesContext(connection) as figures_only:
        figures.dashboard(Period.last())
    assert len(figures_only) == 8  # the seventh: failed webhooks; the eighth: spend per key


# --- The CSV ------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_ledger_csv_has_a_header_and_the_periods_entries(client, staff, team, alice):
    at(
        credits_adjust(user=alice, pool="studio", amount=5, key="f", reason="=HYPERLINK(1)"),
        local(0, 1),
    )
    client.force_login(staff)
    start = timezone.localdate() - timedelta(days=5)
    response = client.get(CSV, {"start": start, "end": timezone.localdate()})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    assert f'filename="ledger-{start:%Y-%m-%d}-to-' in response["Content-Disposition"]
    header, *rows = read_csv(response)
    assert header == CSV_HEADER
    kinds = [(r[2], r[3], r[4], r[5]) for r in rows]
    # Oldest first: job a (5 days ago) ... the refund (yesterday) ... today's.
    assert kinds[:2] == [("alice", "studio", "hold", "30"), ("alice", "studio", "capture", "30")]
    refund = next(r for r in rows if r[11] == f"job:{team['b'].pk}:refund")
    assert (refund[4], refund[5], refund[6], refund[13]) == ("adjust", "45", "45", "sam")
    assert refund[10] == str(team["b"].pk)
    assert rows[-1][12] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    assert all(r[2] != "bob" or r[4] != "grant" or r[5] != "500" for r in rows)  # day -40
    assert len(rows) == sum(1 for r in rows if r[0].isdigit())


def test_the_csv_defaults_to_the_last_thirty_days(client, staff, team):
    client.force_login(staff)
    _, *rows = read_csv(client.get(CSV))
    assert rows and "500" not in {r[5] for r in rows if r[4] == "grant"}


# --- Who may see it ---------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, CSV])
def test_members_are_sent_to_the_admin_login(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("url", [DASHBOARD, CSV])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("url", [DASHBOARD, CSV])
def test_staff_without_the_ledger_permission_are_refused(client, bob, url):
    bob.is_staff = True
    bob.save()
    bob.user_permissions.add(Permission.objects.get(codename="view_job"))
    client.force_login(bob)
    assert client.get(url).status_code == 403


def test_the_index_link_needs_the_permissions_too(client, bob):
    bob.is_staff = True
    bob.save()
    client.force_login(bob)
    assert DASHBOARD not in client.get(reverse("admin:index")).content.decode()


def test_the_dashboard_shows_spend_per_key_with_its_owner(client, staff, alice, bob):
    from jobs.accounts.api_keys import api_key_create
    from tests.spend_support import funded, job_with_money

    funded(alice)
    funded(bob)
    funded(bob, pool="studio")
    nightly, _ = api_key_create(owner=alice, name="nightly")
    ci, _ = api_key_create(owner=bob, name="ci")
    job_with_money(alice, key=nightly, held=40, charged=30)
    job_with_money(alice, key=nightly, held=20)  # failed: its hold comes back
    job_with_money(bob, key=ci, held=90, charged=90, refunded=90)
    job_with_money(bob, held=500, charged=500, pool="studio")  # no key: not listed
    # Before the period: not counted.
    job_with_money(alice, key=nightly, held=9, charged=9, at=timezone.now() - timedelta(days=90))

    rows = figures.spend_by_key(Period.last())
    assert [(r.name, r.owner, r.charged, r.returned, r.net) for r in rows] == [
        ("ci", "bob", 90, 90, 0),
        ("nightly", "alice", 30, 20, 10),
    ]
    client.force_login(staff)
    response = client.get(DASHBOARD)
    html = response.content.decode()
    section = html[html.index('id="keys-heading"') : html.index('id="jobs-heading"')]
    assert f"sk_{nightly.prefix}_…" in section and "alice" in section
    assert section.index(f"ci <code>sk_{ci.prefix}") < section.index("nightly <code>")

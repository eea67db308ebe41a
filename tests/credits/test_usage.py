"""Usage per API key: jobs, credits charged and returned this period and
over the last 12 months, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.accounts.api_keys import api_key_create
from jobs.credits.usage import keys_usage, months_start
from jobs.models import ApiKey
from tests.spend_support import funded, job_with_money

pytestmark = pytest.mark.django_db


def make_key(owner, name: str, period: str = "month") -> ApiKey:
    key, _raw = api_key_create(owner=owner, name=name)
    ApiKey.objects.filter(pk=key.pk).update(budget_period=period)
    return ApiKey.objects.get(pk=key.pk)


def test_charged_and_returned_per_key_this_period_and_the_year(alice, bob):
    funded(alice)
    funded(bob)
    nightly, other = make_key(alice, "nightly"), make_key(alice, "other")
    job_with_money(alice, key=nightly, held=40, charged=30)
    job_with_money(alice, key=nightly, held=20)  # failed: released whole
    job_with_money(alice, key=other, held=50, charged=50, refunded=50)
    # Two months ago: in the year, not in this month.
    earlier = timezone.now() - timedelta(days=62)
    job_with_money(alice, key=nightly, held=10, charged=10, at=earlier)
    # Over a year ago: in neither.
    job_with_money(alice, key=nightly, held=7, charged=7, at=timezone.now() - timedelta(days=400))
    bobs = make_key(bob, "bob's")
    job_with_money(bob, key=bobs, held=99, charged=99)

    usage = keys_usage([nightly, other])

    assert set(usage) == {nightly.pk, other.pk}
    now = usage[nightly.pk]
    assert (now.this_period.jobs, now.this_period.charged, now.this_period.returned) == (2, 30, 20)
    year = now.last_12_months
    assert (year.jobs, year.charged, year.returned) == (3, 40, 20)
    o = usage[other.pk].this_period
    assert (o.jobs, o.charged, o.returned, o.net) == (1, 50, 50, 0)


def test_a_week_key_counts_only_this_week(alice):
    funded(alice)
    key = make_key(alice, "weekly", period="week")
    job_with_money(alice, key=key, held=5, charged=5)
    job_with_money(alice, key=key, held=8, charged=8, at=timezone.now() - timedelta(days=8))
    usage = keys_usage([key])[key.pk]
    assert usage.period == "week"
    assert (usage.this_period.jobs, usage.this_period.charged) == (1, 5)
    assert (usage.last_12_months.jobs, usage.last_12_months.charged) == (2, 13)


def test_a_fixed_number_of_queries_for_any_number_of_keys(alice, django_assert_num_queries):
    funded(alice)
    one = [make_key(alice, "one")]
    job_with_money(alice, key=one[0], held=5, charged=5)
    many = [make_key(alice, f"k{n}") for n in range(6)]
    for key in many:
        job_with_money(alice, key=key, held=3, charged=2)
    with django_assert_num_queries(2):
        keys_usage(one)
    with django_assert_num_queries(2):
        usage = keys_usage(many)
    assert [usage[k.pk].this_period.charged for k in many] == [2] * 6


def test_the_last_12_months_start_on_the_first_of_the_month_11_months_back():
    now = timezone.make_aware(timezone.datetime(2026, 3, 15, 12))
    start = timezone.localtime(months_start(now=now))
    assert (start.year, start.month, start.day, start.hour) == (2025, 4, 1, 0)

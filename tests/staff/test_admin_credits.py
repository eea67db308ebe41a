"""Staff manage credits in the admin; every change is on the ledger and in history."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from jobs.credits.ledger import credits_balances, credits_grant, credits_hold
from jobs.models import ApiKey, EntryKind, LedgerEntry, Pool

pytestmark = pytest.mark.django_db

LEDGER = reverse("admin:jobs_ledgerentry_changelist")
USERS = reverse("admin:auth_user_changelist")


def credits_url(member) -> str:
    return reverse("admin:auth_user_credits", args=[member.pk])


def member_url(member) -> str:
    return reverse("admin:auth_user_change", args=[member.pk])


def open_form(client, url=None, member=None) -> str:
    """Render the credits form and return its one-time key."""
    response = client.get(url or credits_url(member))
    assert response.status_code == 200
    return str(response.context["form"].initial["key"])


def post_change(client, member, key, **fields):
    data = {"kind": "grant", "pool": "studio", "amount": "100", "reason": "", "key": key}
    return client.post(credits_url(member), {**data, **fields})


def open_bulk_form(client, *members):
    response = client.post(
        USERS,
        {"action": "grant_or_adjust_credits", "_selected_action": [m.pk for m in members]},
    )
    assert response.status_code == 200
    return str(response.context["form"].initial["key"])


def post_bulk(client, members, key, **fields):
    data = {
        "action": "grant_or_adjust_credits",
        "_selected_action": [m.pk for m in members],
        "apply": "Post",
        "kind": "grant",
        "pool": "studio",
        "amount": "100",
        "reason": "Welcome",
        "key": key,
    }
    return client.post(USERS, {**data, **fields})


def make_members(user_model, n: int, *, grants: dict[str, int]) -> None:
    """`n` new members, each granted `grants` (credits by pool)."""
    for _ in range(n):
        member = user_model.objects.create_user(f"m{user_model.objects.count()}")
        for pool, amount in grants.items():
            credits_grant(user=member, pool=pool, amount=amount, key=f"{pool}-{member.pk}")


def page_after_growth(client, url: str, make, *, more: int, at_most):
    """Render `url` over 2 rows, then over `more` besides, asserting the second
    takes no more queries than the first; returns the second (rendered) page."""
    make(2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    make(more)
    with at_most(len(few)):
        response = client.get(url)
    assert response.status_code == 200
    return response


def history(member):
    return LogEntry.objects.filter(object_id=str(member.pk), content_type__model="user")


# --- One member ---------------------------------------------------------------------


def test_the_member_page_shows_balances_and_links_to_the_credits_form(staff_client, alice):
    credits_grant(user=alice, pool=Pool.API, amount=1234, key="g")
    response = staff_client.get(member_url(alice))
    assert response.status_code == 200
    content = response.content.decode()
    assert "API: 1,234 available, 0 held" in content
    assert credits_url(alice) in content


def test_staff_grants_credits_from_the_member_page(staff_client, staff, alice):
    key = open_form(staff_client, member=alice)
    response = post_change(staff_client, alice, key, reason="Welcome aboard")

    assert response.status_code == 302
    assert response["Location"] == member_url(alice)
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.account.user, entry.account.pool) == (
        EntryKind.GRANT,
        100,
        alice,
        Pool.STUDIO,
    )
    assert entry.created_by == staff
    assert entry.reason == "Welcome aboard"
    assert entry.idempotency_key == f"admin-credits:{key}:{alice.pk}"
    log = history(alice).get()
    assert (log.user, log.action_flag) == (staff, CHANGE)
    assert f"Granted 100 Studio credits (ledger entry #{entry.pk}): Welcome aboard" in (
        log.get_change_message()
    )
    page = staff_client.get(response["Location"])
    assert "Granted 100 Studio credits for alice." in page.content.decode()


def test_staff_adjusts_credits_down_with_a_reason(staff_client, alice):
    credits_grant(user=alice, pool=Pool.API, amount=50, key="g")
    key = open_form(staff_client, member=alice)
    response = post_change(
        staff_client, alice, key, kind="adjust", pool="api", amount="-20", reason="Double grant"
    )
    assert response.status_code == 302
    assert credits_balances(user=alice)[Pool.API].balance == 30
    assert "Adjusted API credits by -20" in history(alice).get().get_change_message()


def test_a_double_submitted_form_posts_once(staff_client, alice):
    key = open_form(staff_client, member=alice)
    first = post_change(staff_client, alice, key)
    second = post_change(staff_client, alice, key)

    assert (first.status_code, second.status_code) == (302, 302)
    assert LedgerEntry.objects.count() == 1
    assert credits_balances(user=alice)[Pool.STUDIO].balance == 100
    assert history(alice).count() == 1
    page = staff_client.get(second["Location"]).content.decode()
    assert "already submitted" in page


def test_a_fresh_form_posts_again(staff_client, alice):
    post_change(staff_client, alice, open_form(staff_client, member=alice))
    post_change(staff_client, alice, open_form(staff_client, member=alice))
    assert credits_balances(user=alice)[Pool.STUDIO].balance == 200


def test_a_reused_form_with_a_different_amount_is_refused(staff_client, alice):
    key = open_form(staff_client, member=alice)
    post_change(staff_client, alice, key)
    response = post_change(staff_client, alice, key, amount="500")
    assert response.status_code == 200
    assert "already used to post a different change" in response.content.decode()
    assert credits_balances(user=alice)[Pool.STUDIO].balance == 100


def test_a_negative_adjustment_beyond_available_shows_the_ledgers_error(staff_client, alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=50, key="g")
    credits_hold(user=alice, pool=Pool.STUDIO, amount=40, key="h")
    key = open_form(staff_client, member=alice)
    response = post_change(
        staff_client, alice, key, kind="adjust", amount="-20", reason="Chargeback"
    )
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == [
        "Not enough studio credits: this needs 20, and 10 are available."
    ]
    assert LedgerEntry.objects.count() == 2
    assert not history(alice).exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "adjust", "amount": "-5", "reason": " "}, "reason", "needs a reason"),
        ({"kind": "grant", "amount": "-5"}, "amount", "must be positive"),
        ({"kind": "adjust", "amount": "0", "reason": "x"}, "amount", "must change"),
        ({"amount": "1.5"}, "amount", "whole number"),
        ({"pool": "gold"}, "pool", "valid choice"),
    ],
    ids=[
        "adjustment without reason",
        "negative grant",
        "zero adjustment",
        "fraction",
        "unknown pool",
    ],
)
def test_bad_input_is_refused_on_its_field(staff_client, alice, fields, field, message):
    key = open_form(staff_client, member=alice)
    response = post_change(staff_client, alice, key, **fields)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not LedgerEntry.objects.exists()


def test_a_form_without_its_key_is_refused(staff_client, alice):
    response = post_change(staff_client, alice, "")
    assert response.status_code == 200
    assert not LedgerEntry.objects.exists()


# --- Several members --------------------------------------------------------------


def test_the_bulk_action_grants_to_each_selected_member(staff_client, staff, alice, bob):
    key = open_bulk_form(staff_client, alice, bob)
    response = post_bulk(staff_client, [alice, bob], key)

    assert response.status_code == 302
    entries = LedgerEntry.objects.order_by("account__user__pk")
    assert [(e.account.user, e.amount, e.created_by) for e in entries] == [
        (alice, 100, staff),
        (bob, 100, staff),
    ]
    assert {e.idempotency_key for e in entries} == {
        f"admin-credits:{key}:{alice.pk}",
        f"admin-credits:{key}:{bob.pk}",
    }
    assert history(alice).count() == history(bob).count() == 1


def test_a_double_submitted_bulk_form_posts_once_per_member(staff_client, alice, bob):
    key = open_bulk_form(staff_client, alice, bob)
    post_bulk(staff_client, [alice, bob], key)
    post_bulk(staff_client, [alice, bob], key)
    assert LedgerEntry.objects.count() == 2
    assert history(alice).count() == history(bob).count() == 1


def test_a_bulk_change_one_member_cannot_take_posts_nothing(staff_client, alice, bob):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=50, key="g")
    key = open_bulk_form(staff_client, alice, bob)
    response = post_bulk(
        staff_client, [alice, bob], key, kind="adjust", amount="-10", reason="Expired"
    )
    assert response.status_code == 200
    assert "bob: Not enough studio credits" in response.content.decode()
    assert LedgerEntry.objects.count() == 1
    assert credits_balances(user=alice)[Pool.STUDIO].balance == 50


# --- Who may ------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/", LEDGER, USERS])
def test_a_member_is_sent_to_the_admin_login(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_member_cannot_post_credits(client, alice):
    client.force_login(alice)
    response = post_change(client, alice, "7d0f7e2a-0d3c-4c55-9a53-5d1c1d8b8a11")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not LedgerEntry.objects.exists()


def test_staff_without_the_ledger_permission_cannot_post_credits(client, django_user_model, alice):
    helper = django_user_model.objects.create_user("helper", is_staff=True)
    helper.user_permissions.add(Permission.objects.get(codename="change_user"))
    client.force_login(helper)
    assert client.get(credits_url(alice)).status_code == 403
    assert client.get(member_url(alice)).status_code == 200
    assert credits_url(alice) not in client.get(member_url(alice)).content.decode()


# --- The ledger itself ------------------------------------------------------------


def test_the_ledger_admin_is_read_only(staff_client, alice):
    entry = credits_grant(user=alice, pool=Pool.STUDIO, amount=10, key="g")
    assert staff_client.get(reverse("admin:jobs_ledgerentry_add")).status_code == 403
    delete = reverse("admin:jobs_ledgerentry_delete", args=[entry.pk])
    assert staff_client.get(delete).status_code == 403
    response = staff_client.get(LEDGER)
    assert "delete_selected" not in response.content.decode()
    view = staff_client.get(reverse("admin:jobs_ledgerentry_change", args=[entry.pk]))
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()


def test_the_ledger_filters_by_pool_kind_and_member(staff_client, alice, bob):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=11, key="a-studio")
    credits_grant(user=alice, pool=Pool.API, amount=22, key="a-api")
    credits_grant(user=bob, pool=Pool.API, amount=33, key="b-api")
    credits_hold(user=bob, pool=Pool.API, amount=4, key="b-hold")

    def shown(query: str) -> set[str]:
        response = staff_client.get(f"{LEDGER}?{query}")
        assert response.status_code == 200
        return {e.idempotency_key for e in response.context["cl"].result_list}

    assert shown("account__pool__exact=api") == {"a-api", "b-api", "b-hold"}
    assert shown("account__pool__exact=api&kind__exact=grant") == {"a-api", "b-api"}
    assert shown("q=alice") == {"a-studio", "a-api"}
    assert shown("q=bob@example.com") == {"b-api", "b-hold"}
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    span = {"created_at__gte": str(today), "created_at__lt": str(today + timedelta(days=1))}
    assert shown(urlencode(span)) == {"a-studio", "a-api", "b-api", "b-hold"}
    span["created_at__lt"] = str(today)
    assert shown(urlencode(span)) == set()


def test_the_ledger_changelist_query_count_does_not_grow(
    staff_client, django_user_model, django_assert_max_num_queries
):
    response = page_after_growth(
        staff_client,
        LEDGER,
        lambda n: make_members(django_user_model, n, grants={Pool.STUDIO: 5}),
        more=30,
        at_most=django_assert_max_num_queries,
    )
    # ...and those queries drew the page: every entry's row, with its member.
    assert len(response.context["cl"].result_list) == 32
    assert response.content.decode().count('<td class="field-member">') == 32


# --- Members list -------------------------------------------------------------------


def test_the_member_list_shows_both_pools(staff_client, alice):
    credits_grant(user=alice, pool=Pool.STUDIO, amount=1500, key="g")
    credits_hold(user=alice, pool=Pool.STUDIO, amount=200, key="h")
    response = staff_client.get(USERS)
    row = next(u for u in response.context["cl"].result_list if u.pk == alice.pk)
    assert (row.studio_available, row.studio_held, row.api_available) == (1300, 200, 0)
    assert "1,300 / 200" in response.content.decode()


def test_the_member_list_query_count_does_not_grow_with_members(
    staff_client, django_user_model, django_assert_max_num_queries
):
    response = page_after_growth(
        staff_client,
        USERS,
        lambda n: make_members(django_user_model, n, grants={Pool.STUDIO: 5, Pool.API: 7}),
        more=40,
        at_most=django_assert_max_num_queries,
    )
    # ...and those queries drew the page: every member's row, with their credits.
    assert len(response.context["cl"].result_list) == 43
    assert response.content.decode().count('<td class="field-api_credits">7 / 0</td>') == 42


def test_the_member_list_sorts_by_available_credits(staff_client, alice, bob):
    credits_grant(user=bob, pool=Pool.STUDIO, amount=9, key="g")
    response = staff_client.get(f"{USERS}?o=-6")
    assert [u.username for u in response.context["cl"].result_list][0] == "bob"


# --- API keys -------------------------------------------------------------------------


@pytest.fixture
def alices_key(alice):
    return ApiKey.objects.create(owner=alice, name="CI", prefix="abcd1234", secret_hash="f" * 64)


def test_api_keys_are_listed_without_their_hash(staff_client, alices_key):
    listing = staff_client.get(reverse("admin:jobs_apikey_changelist")).content.decode()
    detail = staff_client.get(
        reverse("admin:jobs_apikey_change", args=[alices_key.pk])
    ).content.decode()
    for page in (listing, detail):
        assert "sk_abcd1234_…" in page
        assert "f" * 64 not in page
        assert "secret_hash" not in page
    assert staff_client.get(reverse("admin:jobs_apikey_add")).status_code == 403


def test_staff_revoke_api_keys(staff_client, staff, alices_key):
    response = staff_client.post(
        reverse("admin:jobs_apikey_changelist"),
        {"action": "revoke", "_selected_action": [alices_key.pk]},
    )
    assert response.status_code == 302
    alices_key.refresh_from_db()
    assert alices_key.revoked_at is not None
    log = LogEntry.objects.get(content_type__model="apikey")
    assert (log.user, log.object_id) == (staff, str(alices_key.pk))


def test_revoking_twice_keeps_the_first_time(staff_client, alices_key):
    url = reverse("admin:jobs_apikey_changelist")
    staff_client.post(url, {"action": "revoke", "_selected_action": [alices_key.pk]})
    alices_key.refresh_from_db()
    first = alices_key.revoked_at
    staff_client.post(url, {"action": "revoke", "_selected_action": [alices_key.pk]})
    alices_key.refresh_from_db()
    assert alices_key.revoked_at == first
    assert LogEntry.objects.filter(content_type__model="apikey").count() == 1


def test_api_keys_filter_by_status(staff_client, alice, alices_key):
    ApiKey.objects.create(
        owner=alice, prefix="zz99", secret_hash="0" * 64, revoked_at=timezone.now()
    )
    url = reverse("admin:jobs_apikey_changelist")

    def shown(status: str) -> set[str]:
        response = staff_client.get(f"{url}?status={status}")
        return {key.prefix for key in response.context["cl"].result_list}

    assert (shown("active"), shown("revoked")) == ({"abcd1234"}, {"zz99"})


@pytest.mark.django_db(transaction=True)
def test_simultaneous_submissions_of_one_form_post_and_log_once(staff, alice):
    from django.test import Client

    from tests.threads_support import run_together

    key = "0b7e5a52-8d8e-4f0c-9d57-2f1e3c0a9b11"
    clients = [Client() for _ in range(8)]
    for each in clients:
        each.force_login(staff)

    results = run_together(len(clients), lambda i: post_change(clients[i], alice, key))

    assert [r.status_code for r in results] == [302] * len(clients), results
    assert LedgerEntry.objects.count() == 1
    assert credits_balances(user=alice)[Pool.STUDIO].balance == 100
    assert history(alice).count() == 1

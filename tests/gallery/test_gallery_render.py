"""The gallery page's cheap rendering: the filters' <select>s written in
Python are Django's markup exactly, and the first page costs a fixed, small
number of queries."""

import pytest
from django import forms
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.safestring import mark_safe

from jobs.gallery.services import OptionsSelect
from tests.gallery.test_gallery import item_ids, many_jobs

CHOICES = [
    ("", "Anyone"),
    ("1", "Ann <Lee> & co"),
    ("2", 'Bob "the builder"'),
    (3, "Carl"),
    ("4", mark_safe("<b>Dee</b>")),
    (None, "No one"),
    (mark_safe("<5>"), "Five"),
]


@pytest.mark.parametrize("value", [None, "", "2", 3, "4", "nobody"])
@pytest.mark.parametrize(
    "attrs",
    [
        {"id": "id_owner"},
        {"id": "id_owner", "aria-invalid": "true", "aria-describedby": "id_owner_error"},
        {"id": "id_owner", "required": True, "disabled": False},
    ],
)
def test_the_filters_select_is_djangos_markup(value, attrs):
    ours = OptionsSelect(choices=CHOICES).render("owner", value, attrs)
    django = forms.Select(choices=CHOICES).render("owner", value, attrs)
    assert ours == django
    assert 'value="2"' in ours and "Ann &lt;Lee&gt; &amp; co" in ours


def test_grouped_choices_fall_back_to_djangos_own():
    grouped = [("", "Any"), ("Team", [("1", "Ann"), ("2", "Bob")])]
    ours = OptionsSelect(choices=grouped).render("owner", "2", {"id": "id_owner"})
    assert ours == forms.Select(choices=grouped).render("owner", "2", {"id": "id_owner"})
    assert '<optgroup label="Team">' in ours


# --- the first page's queries ------------------------------------------------------------


@pytest.mark.django_db
def test_the_first_page_costs_six_queries_whatever_the_page_holds(alice, bob):
    """The session, the member, the "Made by" choices, the page of jobs (owners
    joined), which of them have a picture to stand in for a missing poster,
    and the balances: six, for a full page of 24 items as for 3."""
    c = Client()
    c.force_login(alice)
    for more in (3, 37):
        many_jobs(bob, more)
        with CaptureQueriesContext(connection) as ctx:
            html = c.get(reverse("gallery")).content.decode()
        seen = item_ids(html)
        tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in ctx.captured_queries]
        assert len(tables) == 6, tables
    assert len(seen) == 24
    assert tables == [
        '"django_session"',
        '"auth_user"',
        '"auth_user"',
        '"jobs_job"',
        '"jobs_jobinput"',
        '"jobs_creditaccount"',
    ]

"""The gallery page's cheap rendering: the filters' <select>s, the icons and
the items' dates and prompts written in Python are what Django's widgets,
include and filters wrote; and the first page costs a fixed, small number of
queries."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django import forms
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from jobs.gallery.items import _PageCommon, _prompt_shown
from jobs.gallery.services import OptionsSelect
from jobs.studio.cards import Countdown
from jobs.templatetags.studio_tags import countdown_shown
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
def test_the_first_page_costs_five_queries_whatever_the_page_holds(alice, bob):
    """The member, the "Made by" choices, the page of jobs (owners joined),
    which of them have a picture to stand in for a missing poster, and the
    balances: five, for a full page of 24 items as for 3 (and the session's
    read, when sessions are not cached, as without Redis)."""
    c = Client()
    c.force_login(alice)
    for more in (3, 37):
        many_jobs(bob, more)
        with CaptureQueriesContext(connection) as ctx:
            html = c.get(reverse("gallery")).content.decode()
        seen = item_ids(html)
        tables = [q["sql"].split(" FROM ", 1)[1].split()[0] for q in ctx.captured_queries]
        tables = [table for table in tables if table != '"django_session"']
        assert len(tables) == 5, tables
    assert len(seen) == 24
    assert tables == [
        '"auth_user"',
        '"auth_user"',
        '"jobs_job"',
        '"jobs_jobinput"',
        '"jobs_creditaccount"',
    ]


# --- values worked out in Python are what the template filters wrote ---------------------


ICON_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "jobs" / "_icon.html"
ICONS = re.findall(r'name == "(\w+)"', ICON_TEMPLATE.read_text())


@pytest.mark.parametrize("debug", [False, True])
def test_the_icon_tag_writes_what_the_include_wrote(settings, debug):
    settings.DEBUG = debug
    assert len(ICONS) > 10
    for name in ICONS:
        for css in ("", "empty-icon"):
            include = Template('{% include "jobs/_icon.html" with name=name class=css %}').render(
                Context({"name": name, "css": css})
            )
            tag = Template("{% load studio_tags %}{% icon name css %}").render(
                Context({"name": name, "css": css})
            )
            assert tag == include, name
            assert "<svg" in tag and (css in tag)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 1, 0, 5, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 123456, tzinfo=UTC),
        datetime(2027, 1, 9, 9, 0, tzinfo=UTC),
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland"])
def test_item_dates_are_what_the_date_filter_wrote(moment, zone):
    common = _PageCommon.now()
    with timezone.override(zone):
        local = timezone.localtime(moment)
        expected = Template('{{ m|date:"c" }}|{{ m|date:"j M Y" }}|{{ m|date:"j M Y, H:i" }}')
        countdown = Countdown("Video deleted in", moment, moment)
        for day in (common.day, None):  # the gallery's own, and the plain |date one
            shown = countdown_shown(countdown, day=day)
            written = f"{shown.until_iso}|{common.day(local)}|{shown.until_title}"
            assert written == expected.render(Context({"m": moment}))


@pytest.mark.parametrize("length", [0, 5, 199, 200, 201, 400])
def test_the_prompt_is_cut_as_truncatechars_cut_it(length):
    prompt = ("Ame\u0301lie speaks <softly> " * 40)[:length]
    expected = Template("{{ p|truncatechars:200 }}").render(Context({"p": prompt}))
    assert escape(_prompt_shown(prompt)) == expected


def test_a_countdown_is_written_as_the_include_it_replaced_wrote(settings):
    """{% countdown %} is the one writer of a countdown (the cards, a job's
    page, the gallery); its markup is what jobs/_countdown.html wrote."""
    until = timezone.now() + timedelta(days=2, hours=3)
    countdown = Countdown("Video deleted in", until, until - timedelta(days=1))
    old_include = Template(
        "{% load studio_tags %}"
        '<p class="countdown">{% include "jobs/_icon.html" with name="clock" %}'
        "<span>{{ countdown.label }} "
        '<time data-countdown="{{ countdown.until|epoch_ms }}" '
        'data-warn-from="{{ countdown.warn_from|epoch_ms }}" '
        "datetime=\"{{ countdown.until|date:'c' }}\" "
        "title=\"{{ countdown.until|date:'j M Y, H:i' }}\">"
        "{{ countdown.until|timeuntil }}</time></span></p>"
    )
    tag = Template("{% load studio_tags %}{% countdown countdown %}")
    for debug in (True, False):
        settings.DEBUG = debug
        context = Context({"countdown": countdown})
        assert tag.render(context) == old_include.render(context)

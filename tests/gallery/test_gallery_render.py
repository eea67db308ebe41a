"""The gallery page's cheap rendering: the filters' <select>s written in
Python are Django's markup exactly, and the first page costs a fixed, small
number of queries."""

import pytest
from django import forms
from django.utils.safestring import mark_safe

from jobs.gallery.services import OptionsSelect

CHOICES = [
    ("", "Anyone"),
    ("1", "Ann <Lee> & co"),
    ("2", 'Bob "the builder"'),
    (3, "Carl"),
    ("4", mark_safe("<b>Dee</b>")),
    (None, "No one"),
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

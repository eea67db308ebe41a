"""The run command's first staff account: made once, its password printed once."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


def run() -> str:
    out = io.StringIO()
    call_command("ensure_staff", stdout=out)
    return out.getvalue()


def test_the_first_run_makes_a_staff_login_that_works_and_later_runs_only_name_it():
    first = run()
    password = re.search(r"password: (\S+)", first).group(1)
    # A sign-in has a request: login throttling (django-axes) needs it.
    request = RequestFactory().post("/login/")
    user = authenticate(request, username="admin", password=password)
    assert user is not None and user.is_staff and user.is_superuser

    second = run()
    assert "admin" in second and password not in second
    assert "password:" not in second

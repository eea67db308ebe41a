"""Fixtures of the staff tests: a client signed in as the staff member."""

import pytest


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client

"""The poll loop's lease (jobs/pipeline/leases.py): one loop at a time across
processes and nodes; a holder that dies gives it up when it expires, and a
holder that was taken over can neither renew nor release the new one's."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Lease
from jobs.pipeline import poller
from jobs.pipeline.leases import lease_acquire, lease_release

pytestmark = pytest.mark.django_db

NAME = "test-loop"


def expire(name: str) -> None:
    """What time does to a lease whose holder stopped renewing it."""
    Lease.objects.filter(name=name).update(expires_at=timezone.now() - timedelta(seconds=1))


def holder_of(name: str) -> str:
    return Lease.objects.get(name=name).holder


def test_a_second_holder_is_refused_while_the_first_holds_it():
    assert lease_acquire(NAME, holder="a", seconds=60)
    assert not lease_acquire(NAME, holder="b", seconds=60)
    assert holder_of(NAME) == "a"


def test_the_holder_renews_its_own_lease():
    assert lease_acquire(NAME, holder="a", seconds=5)
    first = Lease.objects.get(name=NAME).expires_at
    assert lease_acquire(NAME, holder="a", seconds=60)
    assert Lease.objects.get(name=NAME).expires_at > first
    assert not lease_acquire(NAME, holder="b", seconds=60)


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_locked_out():
    assert lease_acquire(NAME, holder="a", seconds=60)
    expire(NAME)

    assert lease_acquire(NAME, holder="b", seconds=60)
    assert holder_of(NAME) == "b"
    # The old holder, back from a pause, neither renews nor releases b's lease.
    assert not lease_acquire(NAME, holder="a", seconds=60)
    lease_release(NAME, holder="a")
    assert holder_of(NAME) == "b"
    assert not lease_acquire(NAME, holder="c", seconds=60)


def test_a_released_lease_is_free_at_once():
    assert lease_acquire(NAME, holder="a", seconds=60)
    lease_release(NAME, holder="a")
    assert lease_acquire(NAME, holder="b", seconds=60)


def test_leases_of_other_names_are_independent():
    assert lease_acquire(NAME, holder="a", seconds=60)
    assert lease_acquire("other-loop", holder="b", seconds=60)


# The loop closes stale connections between rounds, as a worker must: no test transaction.
@pytest.mark.django_db(transaction=True)
def test_the_poll_loop_does_not_run_beside_another_until_that_ones_lease_expires():
    assert lease_acquire(poller.LEASE, holder="another-node", seconds=60)
    assert poller.poll_due(max_seconds=1) == 0  # no round run

    expire(poller.LEASE)
    # No job is live: the loop runs one round and stops, giving the lease up.
    assert poller.poll_due(max_seconds=1) == 1
    assert holder_of(poller.LEASE) == ""
    assert lease_acquire(poller.LEASE, holder="another-node", seconds=60)

"""CI's PostgreSQL + Redis run puts its tasks through Redis: under REDIS_URL
the broker django-q uses is Redis and answers; without it, the ORM broker.
(tests/integration/test_every_mode.py shows real tasks waiting there and
taken from there by a real node.)"""

import pytest
from django.conf import settings
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_the_broker_is_redis_under_redis_url_else_the_orm():
    broker = get_broker()
    if settings.REDIS_URL:
        assert isinstance(broker, Redis), type(broker)
        assert broker.ping()
        assert settings.Q_CLUSTER["redis"] == settings.REDIS_URL
    else:
        assert isinstance(broker, ORM), type(broker)

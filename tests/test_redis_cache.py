"""The Redis cache backend settings.py uses with REDIS_URL
(lipsync_site/redis_cache.py): Django's, keeping its redis-py client instead
of building one per call. Needs REDIS_URL (CI's PostgreSQL + Redis run)."""

import os
import threading
import uuid

import pytest

from lipsync_site.redis_cache import RedisCache


@pytest.fixture
def redis_cache():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL (CI's PostgreSQL + Redis run)")
    backend = RedisCache(url, {"KEY_PREFIX": f"test-cache-{uuid.uuid4().hex}"})
    yield backend
    backend.delete_many(["stamp", "added", "many-1", "many-2", "counter"])


def test_it_is_the_cache_django_s_callers_expect(redis_cache):
    redis_cache.set("stamp", 1_700_000_000_000, timeout=60)
    assert redis_cache.get("stamp") == 1_700_000_000_000
    assert redis_cache.add("added", {"a": 1}) is True
    assert redis_cache.add("added", {"a": 2}) is False
    assert redis_cache.get("added") == {"a": 1}
    redis_cache.set_many({"many-1": 1, "many-2": 2}, timeout=60)
    assert redis_cache.get_many(["many-1", "many-2"]) == {"many-1": 1, "many-2": 2}
    assert redis_cache.incr("many-1") == 2
    redis_cache.delete("stamp")
    assert redis_cache.get("stamp") is None


def test_one_client_serves_every_call_and_thread(redis_cache):
    client = redis_cache._cache.get_client()
    assert redis_cache._cache.get_client() is client
    seen = []

    def read():
        for _ in range(50):
            seen.append(redis_cache.get("stamp", "unset"))

    redis_cache.set("stamp", 5, timeout=60)
    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [5] * 200

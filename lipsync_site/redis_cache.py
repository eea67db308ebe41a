"""The cache backend settings.py uses with REDIS_URL: Django's Redis cache,
but keeping one redis-py client per connection pool.

Django's RedisCacheClient builds a new redis.Redis for every call, and its
constructor (a table of every command's reply parser) costs about as much as
the round trip itself. The studio's hottest request, a page's "nothing
changed" (one stamp read; jobs/studio/card_tickets.py), paid it every time.
A redis.Redis may be shared between threads: it takes a connection from the
pool for each command only."""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

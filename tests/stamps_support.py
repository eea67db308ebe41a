"""What the card stamp and card ticket tests share: where the stamps live,
and a member whose cards last changed a while ago."""

import re
import uuid
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from jobs.models import Job, card_stamps


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def card_ids(html: str) -> list[int]:
    found = re.findall(r'<article class="card job-card[^"]*" id="job-(\d+)"', html)
    return [int(pk) for pk in found]


def stamps_in_shared_cache(settings, *, redis_url: str | None, name: str) -> None:
    """The stamps in a cache of this test's own: Redis at `redis_url` (the
    backend settings.py uses with REDIS_URL), else local memory."""
    if redis_url:
        backend = {
            "BACKEND": "lipsync_site.redis_cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"test-{name}-{uuid.uuid4().hex}",
        }
    else:
        backend = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"{name}-{uuid.uuid4().hex}",
        }
    settings.CACHES = {"default": backend}
    settings.CARD_STAMPS_IN_CACHE = True


def last_change_ago(owner, seconds: float) -> None:
    """As if the member's jobs had last changed `seconds` ago."""
    then = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(owner=owner).update(updated_at=then)
    if card_stamps.stamps_in_cache():
        cache.set(card_stamps._key(owner.pk), ms(then))

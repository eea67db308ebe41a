"""Settings for bench/load.py's web server only: the studio's own, plus two
hello-world views (bench/load_urls.py) to measure the pages against. Never
used in production; the studio's URLs stay as they are."""

from lipsync_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench.load_urls"

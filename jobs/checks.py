"""System checks (`manage.py check`, run before migrate, qcluster and the run
command): settings the environment must give together, named by variable."""

from django.conf import settings
from django.core import checks


@checks.register()
def shared_storage_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """S3-compatible storage needs a bucket, and a key pair given whole."""
    if settings.STORAGE_BACKEND != "s3":
        return []
    found: list[checks.CheckMessage] = []
    if not settings.AWS_STORAGE_BUCKET_NAME:
        found.append(
            checks.Error(
                "STORAGE_BACKEND is s3 but AWS_STORAGE_BUCKET_NAME is not set.",
                hint="Set AWS_STORAGE_BUCKET_NAME to the bucket that holds the media "
                "(README: Shared storage).",
                id="jobs.E101",
            )
        )
    if bool(settings.AWS_ACCESS_KEY_ID) != bool(settings.AWS_SECRET_ACCESS_KEY):
        missing = "AWS_SECRET_ACCESS_KEY" if settings.AWS_ACCESS_KEY_ID else "AWS_ACCESS_KEY_ID"
        found.append(
            checks.Error(
                f"{missing} is not set, but its pair is.",
                hint="Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither "
                "to use boto's own credentials (an instance role, ~/.aws).",
                id="jobs.E102",
            )
        )
    if not settings.AWS_S3_ENDPOINT_URL and not settings.AWS_S3_REGION_NAME:
        found.append(
            # A warning: boto may still find a region (AWS_DEFAULT_REGION, ~/.aws).
            checks.Warning(
                "AWS_S3_REGION_NAME is not set (and no AWS_S3_ENDPOINT_URL names the store).",
                hint="Set AWS_S3_REGION_NAME to the bucket's region (signed links are "
                "signed for it), or AWS_S3_ENDPOINT_URL for an S3-compatible store.",
                id="jobs.W102",
            )
        )
    return found


@checks.register(checks.Tags.security, deploy=True)
def shared_storage_deploy(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Videos redirected to a plain-http store from an https studio are mixed
    content: browsers refuse to play them."""
    if (
        settings.STORAGE_BACKEND == "s3"
        and settings.PUBLIC_BASE_URL.startswith("https://")
        and settings.AWS_S3_ENDPOINT_URL.startswith("http://")
    ):
        return [
            checks.Warning(
                "AWS_S3_ENDPOINT_URL is http:// while PUBLIC_BASE_URL is https://.",
                hint="Browsers block videos and posters redirected to plain http from an "
                "https page: serve the store over https.",
                id="jobs.W101",
            )
        ]
    return []

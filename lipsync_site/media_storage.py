"""The media storage settings.py configures from the environment (and tests
configure the same way, against a local S3 API): Django's storage API over the
local disk (MEDIA_ROOT: one machine), or an S3-compatible bucket every web and
cluster node shares (README: "Shared storage")."""

MB = 1024 * 1024


def media_storage(
    *,
    backend: str,
    bucket: str = "",
    endpoint_url: str = "",
    region: str = "",
    access_key: str = "",
    secret_key: str = "",
    addressing_style: str = "auto",
    url_max_age: int = 300,
) -> tuple[dict, list[str]]:
    """STORAGES["default"] for `backend` ("local" or "s3"), and the origins
    browsers are redirected to for playback (for the Content-Security-Policy)."""
    if backend == "local":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}, []
    from boto3.s3.transfer import TransferConfig

    options = {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url or None,
        "region_name": region or None,
        # Unset keys: boto's own chain (instance role, ~/.aws); see jobs/checks.py.
        "access_key": access_key or None,
        "secret_key": secret_key or None,
        "addressing_style": None if addressing_style == "auto" else addressing_style,
        "signature_version": "s3v4",
        "default_acl": None,  # private objects: only signed links read them
        "querystring_auth": True,
        "querystring_expire": url_max_age,
        # Never replace a stored file of the same name (django-storages' default
        # is to): two archive attempts, or an input and its copy, must each get
        # their own object, as on the local disk, or deleting one deletes both.
        "file_overwrite": False,
        # Reading a whole object (copying an input) spools to disk past this;
        # the default, 0, would keep a 500 MB video in memory.
        "max_memory_size": 8 * MB,
        # Uploads go in 8 MB parts, a few at a time, so a long video never sits
        # in memory whole (bench/storage_memory.py measures it).
        "transfer_config": _transfer_config(TransferConfig),
    }
    endpoint = endpoint_url or (
        f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"
    )
    scheme, rest = endpoint.split("://", 1)
    host = rest.split("/", 1)[0]
    # Signed links name the bucket in the path or in the host, by addressing
    # style ("auto" leaves it to boto: allow both).
    origins = []
    if addressing_style in ("path", "auto"):
        origins.append(f"{scheme}://{host}")
    if addressing_style in ("virtual", "auto"):
        origins.append(f"{scheme}://{bucket}.{host}")
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}, origins


def _transfer_config(cls):
    config = cls(
        multipart_threshold=8 * MB,
        multipart_chunksize=8 * MB,
        max_concurrency=4,
    )
    # Parts read ahead of the uploads in flight (s3transfer's default is 10).
    config.max_in_memory_upload_chunks = 4
    return config

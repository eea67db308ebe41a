"""The small surface every provider adapter has. A new provider is one new
module with one ProviderAdapter subclass, listed in registry.ADAPTERS."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote, urlsplit

import requests

from .http import ProviderHttp, ProviderRejected

Mode = Literal["dialog", "talking_photo", "video_dub"]
Resolution = Literal["480p", "720p"]
TaskState = Literal["pending", "processing", "completed", "failed"]
# A dialog's speaking order (jobs.models.DialogOrder), for providers that take one.
DialogOrder = Literal["sequential", "meanwhile"]

MAX_TASK_ID_CHARS = 200  # Job.provider_task_id's max_length


@dataclass(frozen=True, kw_only=True)
class SubmitRequest:
    """What the studio asks for, in its own words; each adapter translates."""

    mode: Mode
    resolution: Resolution
    image_url: str | None = None
    audio_url: str | None = None
    left_audio_url: str | None = None
    right_audio_url: str | None = None
    video_url: str | None = None
    mask_url: str | None = None
    dialog_order: DialogOrder | None = None  # a dialog's, if the provider takes one
    prompt: str = ""
    seed: int = -1  # -1: let the provider pick
    webhook_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskStatus:
    state: TaskState
    video_url: str | None = None
    error: str = ""  # the provider's reason when state == "failed"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class UnsupportedRequest(ProviderRejected):
    """The request cannot be expressed for this provider; nothing was sent."""


class ProviderAdapter(ABC):
    """One provider account, reached over one ProviderHttp."""

    slug: ClassVar[str]
    label: ClassVar[str]
    modes: ClassVar[Mapping[str, str]]  # studio mode -> provider model name
    supports_webhooks: ClassVar[bool] = False
    # Whether a dialog can take turns or speak at once (the Studio then asks).
    takes_dialog_order: ClassVar[bool] = False
    output_ttl: ClassVar[timedelta]  # how long the provider keeps an output
    rtf_by_resolution: ClassVar[Mapping[str, float]]  # seconds of work per second of video

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        session: requests.Session | None = None,
        connect_timeout: float = 5,
        read_timeout: float = 30,
    ) -> None:
        self.http = ProviderHttp(
            base_url,
            api_key,
            session=session,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.http.base_url}>"

    @classmethod
    def rtf(cls, resolution: str) -> float:
        return cls.rtf_by_resolution[resolution]

    @classmethod
    def model_for(cls, mode: str) -> str:
        try:
            return cls.modes[mode]
        except KeyError:
            raise UnsupportedRequest(f"{cls.label} does not make {mode} videos.") from None

    @abstractmethod
    def submit(self, req: SubmitRequest) -> str:
        """Start a task once; its provider task id. Raises ProviderRefused,
        ProviderOutcomeUnknown or ProviderRejected (see http.py)."""

    @abstractmethod
    def status(self, task_id: str) -> TaskStatus:
        """The task's state now. Raises ProviderBusy, ProviderUnavailable,
        ProviderMalformed or ProviderRejected (see http.py)."""

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers for subclasses ------------------------------------------------

    def _inputs(
        self, req: SubmitRequest, names: Mapping[str, str], optional: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """{provider field: URL} for each SubmitRequest attribute in `names`;
        a missing required one is the studio's bug, reported before sending."""
        out = {}
        for attr, provider_field in names.items():
            value = getattr(req, attr)
            if value:
                out[provider_field] = value
            elif attr not in optional:
                what = attr.removesuffix("_url").replace("_", " ")
                raise UnsupportedRequest(f"This {req.mode} job has no {what} to send.")
        return out


def task_path(template: str, task_id: str) -> str:
    """A status path with the task id quoted, so an odd id cannot change the path."""
    return template.format(task_id=quote(task_id, safe=""))


def valid_task_id(value: Any) -> str | None:
    """A provider task id we can store and put in a URL, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TASK_ID_CHARS
        and value.isprintable()
        and not value.isspace()
    ):
        return value
    return None


def valid_output_url(value: Any) -> str | None:
    """An http(s) link with a host, or None. Only its form: whether the studio
    may fetch it (public address, redirects) is decided when it is fetched,
    by jobs.fetch."""
    if (
        isinstance(value, str)
        and urlsplit(value).scheme in ("http", "https")
        and urlsplit(value).hostname
    ):
        return value
    return None

"""The small surface every provider adapter has. A new provider is one entry
in catalogue.py and one new module with one ProviderAdapter subclass, listed
in adapters.ADAPTERS. No Django here."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote, urlsplit

import requests

from .catalogue import ProviderFacts
from .http import ProviderHttp, ProviderMalformed, ProviderRejected

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
    seed: int | None = None  # the seed the provider says it used, if it says
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class TaskFields:
    """How one provider's task object reads: its field names, its states in
    ours, and the words its "malformed answer" messages use."""

    id: str
    status: str
    output: str
    error: str
    states: Mapping[str, TaskState]
    who: str  # "JoyPix"
    noun: str  # "task", "job"
    output_noun: str  # what a finished one lacks: "a video URL", "output"


class UnsupportedRequest(ProviderRejected):
    """The request cannot be expressed for this provider; nothing was sent."""


class ProviderAdapter(ABC):
    """One provider account, reached over one ProviderHttp."""

    # Its slug, label, models and other facts (catalogue.py).
    facts: ClassVar[ProviderFacts]

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
    def model_for(cls, mode: str) -> str:
        """The model for a studio mode; UnsupportedRequest before anything is sent."""
        if mode not in cls.facts.models:
            raise UnsupportedRequest(f"{cls.facts.label} does not make {mode} videos.")
        return cls.facts.models[mode]

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

    def _task_status(
        self, data: Mapping[str, Any], task_id: str, *, fields: TaskFields, raw: dict[str, Any]
    ) -> TaskStatus:
        """The TaskStatus in a provider's task object (`raw` is the whole answer),
        or ProviderMalformed when it is about another task, has a status we do
        not know, or is finished without a usable output link."""
        echoed = data.get(fields.id)
        if echoed is not None and str(echoed) != task_id:
            raise ProviderMalformed(f"{fields.who} answered about another {fields.noun}")
        status = data.get(fields.status)
        state = fields.states.get(status) if isinstance(status, str) else None
        if state is None:
            raise ProviderMalformed(f"{fields.who} reported an unknown {fields.noun} status")
        seed = reported_seed(data)
        if state == "completed":
            video_url = valid_output_url(data.get(fields.output))
            if video_url is None:
                raise ProviderMalformed(
                    f"{fields.who} reported a finished {fields.noun} without {fields.output_noun}"
                )
            return TaskStatus(state="completed", video_url=video_url, seed=seed, raw=raw)
        if state == "failed":
            error = data.get(fields.error)
            error = self.http.redact(error) if isinstance(error, str) else ""
            return TaskStatus(state="failed", error=error, seed=seed, raw=raw)
        return TaskStatus(state=state, seed=seed, raw=raw)


def reported_seed(data: Mapping[str, Any]) -> int | None:
    """The seed a task object says was used: its own `seed`, or the one in
    its `inputs` (JoyPix's "input params", a JSON string or an object). None
    when it says nothing usable, or -1 (random, without saying which)."""
    seed = data.get("seed")
    if seed is None:
        inputs = data.get("inputs")
        if isinstance(inputs, str):
            try:
                inputs = json.loads(inputs)
            except ValueError:
                inputs = None
        if isinstance(inputs, Mapping):
            seed = inputs.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return None
    return seed


def request_inputs(
    req: SubmitRequest, names: Mapping[str, str], optional: frozenset[str] = frozenset()
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
    by jobs.net.fetch."""
    if (
        isinstance(value, str)
        and urlsplit(value).scheme in ("http", "https")
        and urlsplit(value).hostname
    ):
        return value
    return None

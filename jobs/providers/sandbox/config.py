"""The sandbox's settings, and the faults it injects on demand.

Plain Python (no Django), so a test can build one, start a server in a thread
and change faults while it runs; the management command builds one from the
environment.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .clock import RenderClock

# Each fault is a count of the requests (or, for task_*/never_finish/webhook_*,
# of the tasks submitted) it applies to; it is consumed one per use.
# -1 means "every one, until cleared".
FAULT_COUNTS: dict[str, str] = {
    # Submit (POST of a new job). Refused before anything is created:
    "submit_429": "429 Too Many Requests with Retry-After; no task is created",
    "submit_502": "502 Bad Gateway (an HTML page, as a proxy sends); no task is created",
    "submit_503": "503 Service Unavailable; no task is created",
    # ...or answered badly after the task WAS created (outcome unknown to the client):
    "submit_500": "the task is created, then 500 Internal Server Error",
    "submit_504": "the task is created, then 504 Gateway Timeout (an HTML page)",
    "submit_timeout": "the task is created, then no answer for timeout_seconds",
    "submit_reset": "the request is read, the task created, the socket closed without an answer",
    "submit_malformed": "the task is created, then 200 with a body that is not the contract",
    # Poll (GET of a task's status):
    "poll_429": "429 Too Many Requests with Retry-After",
    "poll_500": "500 Internal Server Error",
    "poll_404": "404 Not found for this status request (the task goes on)",
    "poll_malformed": "200 with a body that is not the contract",
    # The task itself:
    "task_fail": "the task ends 'failed' with fail_message",
    "never_finish": "the task stays 'processing' forever",
    "task_forget": "the provider forgets the task: every status request answers 404",
    # Outputs (GET of a rendered video):
    "output_slow": "the video is sent slowly, over slow_output_seconds",
    # lipsync.studio webhooks:
    "webhook_never": "no webhook is sent for the task",
    "webhook_twice": "the final webhook is sent twice",
    "webhook_early": "a 'completed' webhook is sent before the output exists (then the real one)",
}

MALFORMED_KINDS = ("not_json", "no_id")


@dataclass
class Faults:
    """Faults to inject, changeable at runtime from any thread.

    Set them with `update({...})` (validated, atomic) or by plain attribute
    assignment; `take(name)` consumes one use under the lock.
    """

    submit_429: int = 0
    submit_502: int = 0
    submit_503: int = 0
    submit_500: int = 0
    submit_504: int = 0
    submit_timeout: int = 0
    submit_reset: int = 0
    submit_malformed: int = 0
    poll_429: int = 0
    poll_500: int = 0
    poll_404: int = 0
    poll_malformed: int = 0
    task_fail: int = 0
    never_finish: int = 0
    task_forget: int = 0
    output_slow: int = 0
    webhook_never: int = 0
    webhook_twice: int = 0
    webhook_early: int = 0
    # Parameters of the faults above.
    retry_after: int = 2  # seconds, in the Retry-After header of a 429
    timeout_seconds: float = 35.0  # how long submit_timeout keeps the client waiting
    malformed_kind: str = "not_json"  # "not_json": HTML/garbage; "no_id": JSON without the id
    fail_message: str = "Face not detected in image"
    slow_output_seconds: float = 3.0  # how long output_slow takes to send a video
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, name: str) -> bool:
        """True if fault `name` applies to this request, consuming one use."""
        if name not in FAULT_COUNTS:
            raise KeyError(name)
        with self._lock:
            remaining = getattr(self, name)
            if remaining == 0:
                return False
            if remaining > 0:
                setattr(self, name, remaining - 1)
            return True

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several faults at once; unknown names or bad values raise
        ValueError and change nothing."""
        checked = {name: _check(name, value) for name, value in values.items()}
        with self._lock:
            for name, value in checked.items():
                setattr(self, name, value)

    def clear(self) -> None:
        with self._lock:
            for name in FAULT_COUNTS:
                setattr(self, name, 0)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}


_PARAMETERS: dict[str, type] = {
    "retry_after": int,
    "timeout_seconds": float,
    "malformed_kind": str,
    "fail_message": str,
    "slow_output_seconds": float,
}


def _check(name: str, value: Any) -> Any:
    if name in FAULT_COUNTS:
        if isinstance(value, bool):  # True: every time; False: off
            return -1 if value else 0
        if not isinstance(value, int) or value < -1:
            raise ValueError(f"fault {name} must be a count (-1 = always)")
        return value
    kind = _PARAMETERS.get(name)
    if kind is None:
        raise ValueError(f"unknown fault {name!r}")
    if kind is str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
        if name == "malformed_kind" and value not in MALFORMED_KINDS:
            raise ValueError(f"malformed_kind must be one of {', '.join(MALFORMED_KINDS)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return kind(value)


@dataclass
class SandboxConfig:
    # The Bearer key both contracts accept. Never logged (repr hides it).
    api_key: str = field(default="sandbox-key", repr=False)
    # Processing time = max(min_delay, rtf x output seconds), counted from the
    # moment the inputs are fetched. The real providers' RTF is 15-25.
    rtf: float = 0.05
    min_delay: float = 0.5
    # Seconds a new task stays "submitted" before its inputs are fetched.
    start_delay: float = 0.0
    # Outputs are deleted (and their URLs answer 404) this long after completion.
    output_ttl_seconds: float = 72 * 3600
    # Where outputs and fetched inputs live; None: a temporary directory,
    # removed on stop.
    storage_dir: Path | None = None
    # Base of the output URLs handed out; None: the server's own URL.
    public_url: str | None = None
    # Rendering.
    fps: int = 12
    render_workers: int = 2
    # Fetching inputs.
    max_input_bytes: int = 200 * 1024 * 1024
    fetch_timeout: float = 30.0
    max_media_seconds: float = 600.0  # both providers stop at 10 minutes
    # lipsync.studio webhooks: POSTed once per attempt, never following redirects.
    webhook_timeout: float = 5.0
    webhook_attempts: int = 1
    webhook_retry_delay: float = 1.0
    faults: Faults = field(default_factory=Faults)
    # The realistic clock (clock.py): queue wait + seconds x rtf x a seeded
    # log-normal factor, with outliers. None: max(min_delay, rtf x seconds).
    clock: RenderClock | None = None

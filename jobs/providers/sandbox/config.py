"""The sandbox's settings, and the faults it injects on demand.

Plain Python (no Django), so a test can build one, start a server in a thread
and change faults while it runs; the management command builds one from the
environment.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .clock import RenderClock

# Each fault is a count of the requests (or, for task_*/never_finish/webhook_*,
# of the tasks submitted) it applies to; it is consumed one per use.
# -1 means "every one, until cleared". A fault can also have a rate (`rates`):
# the chance, drawn from a generator seeded by `seed` and the fault's name, that
# it applies to a request its count leaves alone; so one seed gives the same
# sequence of draws for each fault, whatever the others do.
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
    "poll_reset": "the socket is closed without an answer (the task goes on)",
    "poll_slow": "the answer comes after slow_poll_seconds",
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

# Which faults a request of each kind can meet (spread_rate spreads one rate
# over them). The ones that leave a submission's outcome unknown are in: a
# studio must not send those again, and a chaos run counts that it does not.
SUBMIT_FAULTS = ("submit_429", "submit_503", "submit_502", "submit_500", "submit_reset")
POLL_FAULTS = ("poll_429", "poll_500", "poll_404", "poll_reset", "poll_slow")
TASK_FAULTS = ("task_fail", "task_forget", "webhook_never", "webhook_twice")


def spread_rate(rate: float) -> dict[str, float]:
    """Per-fault rates such that a submit or a status request meets one of its
    faults with chance `rate`, an output download is slow with chance `rate`,
    and a task draws each task fault with chance rate / 4."""
    if not 0 <= rate <= 1:
        raise ValueError("a fault rate must be between 0 and 1")
    rates: dict[str, float] = {}
    for group in (SUBMIT_FAULTS, POLL_FAULTS):
        # The group's faults are tried one after another: 1 - (1 - each)^n = rate.
        each = 1 - math.pow(1 - rate, 1 / len(group))
        rates.update(dict.fromkeys(group, round(each, 6)))
    rates["output_slow"] = rate
    rates.update(dict.fromkeys(TASK_FAULTS, round(rate / 4, 6)))
    return rates


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
    poll_reset: int = 0
    poll_slow: int = 0
    task_fail: int = 0
    never_finish: int = 0
    task_forget: int = 0
    output_slow: int = 0
    webhook_never: int = 0
    webhook_twice: int = 0
    webhook_early: int = 0
    # Chances (0-1) of each fault beyond its count, and the seed of their draws.
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    # Parameters of the faults above.
    retry_after: int = 2  # seconds, in the Retry-After header of a 429
    timeout_seconds: float = 35.0  # how long submit_timeout keeps the client waiting
    malformed_kind: str = "not_json"  # "not_json": HTML/garbage; "no_id": JSON without the id
    fail_message: str = "Face not detected in image"
    slow_output_seconds: float = 3.0  # how long output_slow takes to send a video
    slow_poll_seconds: float = 3.0  # how long poll_slow keeps a status request waiting
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _draws: dict[str, random.Random] = field(default_factory=dict, repr=False, compare=False)

    def take(self, name: str) -> bool:
        """True if fault `name` applies to this request, consuming one use."""
        if name not in FAULT_COUNTS:
            raise KeyError(name)
        with self._lock:
            remaining = getattr(self, name)
            if remaining > 0:
                setattr(self, name, remaining - 1)
            if remaining != 0:
                return True
            rate = self.rates.get(name, 0.0)
            if not rate:
                return False
            draws = self._draws.get(name)
            if draws is None:
                draws = self._draws[name] = random.Random(f"{self.seed}/{name}")
            return draws.random() < rate

    def update(self, values: Mapping[str, Any]) -> None:
        """Set several faults at once; unknown names or bad values raise
        ValueError and change nothing. `fault_rate` (0-1) sets the rates of
        spread_rate(fault_rate), under any `rates` given beside it."""
        values = dict(values)
        if "fault_rate" in values:
            rate = values.pop("fault_rate")
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValueError("fault_rate must be a chance between 0 and 1")
            values["rates"] = {**spread_rate(rate), **(values.get("rates") or {})}
        checked = {name: _check(name, value) for name, value in values.items()}
        with self._lock:
            for name, value in checked.items():
                if name == "rates":  # merged: a rate of 0 removes one
                    value = {k: v for k, v in {**self.rates, **value}.items() if v}
                setattr(self, name, value)
            if "rates" in checked or "seed" in checked:
                self._draws.clear()  # each fault's draws start again from the seed

    def clear(self) -> None:
        with self._lock:
            for name in FAULT_COUNTS:
                setattr(self, name, 0)
            self.rates = {}
            self._draws.clear()

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                f.name: (dict(value) if isinstance(value := getattr(self, f.name), dict) else value)
                for f in fields(self)
                if not f.name.startswith("_")
            }


_PARAMETERS: dict[str, type] = {
    "retry_after": int,
    "timeout_seconds": float,
    "malformed_kind": str,
    "fail_message": str,
    "slow_output_seconds": float,
    "slow_poll_seconds": float,
}


def _check(name: str, value: Any) -> Any:
    if name in FAULT_COUNTS:
        if isinstance(value, bool):  # True: every time; False: off
            return -1 if value else 0
        if not isinstance(value, int) or value < -1:
            raise ValueError(f"fault {name} must be a count (-1 = always)")
        return value
    if name == "rates":
        if not isinstance(value, Mapping):
            raise ValueError("rates must be an object of fault names and chances (0-1)")
        for fault, rate in value.items():
            if fault not in FAULT_COUNTS:
                raise ValueError(f"unknown fault {fault!r} in rates")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError(f"the rate of {fault} must be a chance between 0 and 1")
        return {fault: float(rate) for fault, rate in value.items()}
    if name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("seed must be an integer")
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
    # Keep tasks, submission counts and answer counts in storage_dir/journal.jsonl
    # (appended as they change, so a SIGKILL loses nothing) and take them back on
    # start: a restarted sandbox goes on with its tasks, as a real provider would.
    keep_state: bool = False
    faults: Faults = field(default_factory=Faults)
    # The realistic clock (clock.py): queue wait + seconds x rtf x a seeded
    # log-normal factor, with outliers. None: max(min_delay, rtf x seconds).
    clock: RenderClock | None = None

"""The sandbox's realistic clock: how long a task takes, drawn the way a real
provider's render times spread.

    render time = queue wait + seconds of video x rtf(resolution) x factor

- the queue wait is spent "submitted" (JoyPix shows that status; lipsync.studio
  says "processing" throughout), drawn uniformly from 0 to 2 x `queue_seconds`;
- `factor` is log-normal with median 1 and p97.5 at 1 + `spread` (so, the
  spread being symmetric in log terms, p2.5 at 1 / (1 + spread): with 0.3,
  95 % of tasks take 0.77x-1.30x the median);
- `outliers` of the tasks are slow ones: `outlier_factor` (3) x the median.

Each task's draw comes from `seed` and the task's number in the order of
submission, so a bench run can be repeated and two clients watching the same
tasks see the same times. Plain Python: no Django (tests/test_imports.py).

Off by default (SandboxConfig.clock is None): tasks take max(min_delay,
rtf x seconds), which keeps the run command and the tests fast.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

Z_975 = 1.959964  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Draw:
    queue_wait: float  # seconds "submitted" before the inputs are fetched
    factor: float  # x the median processing time
    outlier: bool = False

    def processing(self, *, seconds: float, rtf: float) -> float:
        return seconds * rtf * self.factor


@dataclass
class RenderClock:
    spread: float = 0.3  # the factor's p97.5 is 1 + spread, its p2.5 1 / (1 + spread)
    queue_seconds: float = 0.0  # mean queue wait
    outliers: float = 0.0  # share of tasks that are slow
    outlier_factor: float = 3.0
    seed: int = 1
    # Seconds of processing per second of video, per resolution; a resolution
    # missing here uses SandboxConfig.rtf.
    rtf_by_resolution: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.spread < 1:
            raise ValueError("spread must be in [0, 1)")
        if self.queue_seconds < 0 or not 0 <= self.outliers <= 1 or self.outlier_factor < 1:
            raise ValueError("queue_seconds >= 0, outliers in [0, 1], outlier_factor >= 1")
        if any(v < 0 for v in self.rtf_by_resolution.values()):
            raise ValueError("rtf must be >= 0")

    @property
    def sigma(self) -> float:
        """The log-normal's sigma: ln(1 + spread) is 1.96 sigma."""
        return math.log1p(self.spread) / Z_975

    def draw(self, number: int) -> Draw:
        """The times of the `number`th task submitted (0, 1, 2, ...)."""
        rng = random.Random(f"{self.seed}:{number}")
        queue = rng.uniform(0, 2 * self.queue_seconds) if self.queue_seconds else 0.0
        if rng.random() < self.outliers:
            return Draw(queue, self.outlier_factor, outlier=True)
        return Draw(queue, math.exp(rng.gauss(0.0, self.sigma)))

    def rtf(self, resolution: str, default: float) -> float:
        return self.rtf_by_resolution.get(resolution, default)

    @classmethod
    def from_json(cls, text: str) -> RenderClock | None:
        """SANDBOX_CLOCK: "" -> None (off); else a JSON object of the fields,
        e.g. {"spread": 0.3, "queue_seconds": 2, "outliers": 0.02, "seed": 7,
        "rtf_by_resolution": {"480p": 15, "720p": 25}}."""
        if not text.strip():
            return None
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("SANDBOX_CLOCK must be a JSON object")
        known = {"spread", "queue_seconds", "outliers", "outlier_factor", "seed"}
        unknown = set(data) - known - {"rtf_by_resolution"}
        if unknown:
            raise ValueError(f"unknown SANDBOX_CLOCK field(s): {', '.join(sorted(unknown))}")
        rtfs = data.get("rtf_by_resolution") or {}
        if not isinstance(rtfs, dict):
            raise ValueError("rtf_by_resolution must be an object")
        return cls(
            **{name: data[name] for name in known if name in data},
            rtf_by_resolution={str(k): float(v) for k, v in rtfs.items()},
        )

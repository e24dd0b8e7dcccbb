"""One line of training progress at a time: step, latest losses, images/s and an ETA.

Meant for logs rather than terminals (no carriage returns), so that the lines survive being
forwarded from a Ray worker to the driver and from there into a ``dvc repro`` log.

>>> lines = []
>>> p = ProgressLine("wpp", total=100, images_per_step=128, every_s=0.0, write=lines.append)
>>> p.on_step(50, {"loss": 0.25})
>>> p.on_step(100, {"loss": 0.125})
>>> lines[-1].startswith("[wpp] step 100/100 (100%)") and "loss 0.125" in lines[-1]
True
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path


def _stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def format_seconds(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``.

    >>> format_seconds(75), format_seconds(3700), format_seconds(9)
    ('1m15s', '1h01m', '9s')
    """
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class ProgressLine:
    """A training-loop callback that writes a progress line at most every ``every_s`` seconds
    (and always at the last step): ``[label] step 250/3000 (8%) loss 0.21 ... 410 img/s ETA 9m``.
    """

    def __init__(
        self,
        label: str,
        total: int,
        images_per_step: int,
        start: int = 0,
        every_s: float = 15.0,
        write: Callable[[str], None] = _stdout,
        max_metrics: int = 4,
    ) -> None:
        self.label = label
        self.total = total
        self.images_per_step = images_per_step
        self.every_s = every_s
        self.write = write
        self.max_metrics = max_metrics
        self._t0 = self._last_t = time.perf_counter()
        self._start = self._last_step = start

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        if now - self._last_t < self.every_s and step < self.total:
            return
        rate = (step - self._start) / max(now - self._t0, 1e-9)  # steps/s since the loop began
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        losses = " ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[: self.max_metrics])
        pct = 100 * step // max(self.total, 1)
        tail = "done" if step >= self.total else f"ETA {format_seconds(eta)}"
        self.write(f"[{self.label}] step {step}/{self.total} ({pct}%) {losses} "
                   f"{rate * self.images_per_step:.0f} img/s {tail}")  # fmt: skip
        self._last_t, self._last_step = now, step

    def on_checkpoint(self, step: int, path: Path) -> None:  # noqa: D102 - nothing to show
        pass

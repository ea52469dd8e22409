"""The terminal's view of a running sweep: trials done / running / pending / failed, the best
value so far of the spec's metric, and an ETA.

:class:`Progress` is a driver-side ``tune.Callback``. On a TTY it rewrites one line in place
(at most once a second); otherwise (a log file, ``ray job logs``) it prints a line every 30 s
(``FTSWEEP_PROGRESS_S`` sets the interval). The ETA assumes the remaining trials take as long as
the finished ones did, in the same parallelism: elapsed × remaining ÷ done.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from ray import tune

__all__ = ["Progress", "progress_line"]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def progress_line(
    *, total: int, done: int, running: int, failed: int, best: float | None, metric: str, elapsed: float
) -> str:
    """One progress line (``pending`` = what has not started yet)."""
    pending = max(total - done - running - failed, 0)
    best_text = "–" if best is None or not math.isfinite(best) else f"{best:.4g}"
    ended = done + failed
    eta = _duration(elapsed * (total - ended) / ended) if ended else "?"
    return (
        f"ftsweep: {done}/{total} done, {running} running, {pending} pending, {failed} failed"
        f" | best {metric} {best_text} | elapsed {_duration(elapsed)}, ETA {eta}"
    )


class Progress(tune.Callback):
    """Print :func:`progress_line` while Tune runs (see the module docstring)."""

    def __init__(self, total: int, metric: str, mode: str) -> None:
        self.total, self.metric, self.mode = total, metric, mode
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = ""
        #: trials Tune reported complete (a scheduler may stop a paused trial without a result)
        self.completed: set[str] = set()

    def _interval(self) -> float:
        env = os.environ.get("FTSWEEP_PROGRESS_S")
        if env:
            return float(env)
        return 1.0 if sys.stdout.isatty() else 30.0

    def _line(self, trials: list) -> str:
        from ftsweep.trial import FAILED_KEY

        done = running = failed = 0
        best: float | None = None
        for t in trials:
            last = t.last_result or {}
            if t.status == "ERROR" or last.get(FAILED_KEY):
                failed += 1
            elif t.status == "TERMINATED" and (last.get("done") or t.trial_id in self.completed):
                done += 1  # a trial an interrupt stopped is TERMINATED too: it is still to run
            elif t.status == "RUNNING":
                running += 1
            value = last.get(self.metric)
            if isinstance(value, int | float) and math.isfinite(value):
                better = best is None or (value > best if self.mode == "max" else value < best)
                best = float(value) if better else best
        return progress_line(
            total=self.total,
            done=done,
            running=running,
            failed=failed,
            best=best,
            metric=self.metric,
            elapsed=time.monotonic() - self.start,
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.completed.add(trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self.last < self._interval():
            return
        self.last = now
        line = self._line(trials)
        if sys.stdout.isatty():
            sys.stdout.write("\r\033[K" + line)
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        self.shown = line

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        line = self._line(trials)
        sys.stdout.write(("\r\033[K" if sys.stdout.isatty() else "") + line + "\n")
        sys.stdout.flush()

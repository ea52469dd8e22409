"""The Ray Tune adapter of every method: a class Trainable around one ``ftsweep.methods`` object.

``trainables/<m>.py`` subclasses :class:`MethodTrainable` with its method class in
``method_cls``. The sweep runner uses :class:`MethodTrainable` itself: a spec's jobs run in one
Tune experiment, so each trial's config names its method (:data:`METHOD_KEY`) and the trial
builds that method's class from the registry — one actor can then be reused across jobs.

Failures: Tune retries a trial whose worker or node died (``FailureConfig(max_failures)``, from
its last checkpoint). An exception of the method itself (a non-finite loss, bad data, a config or
checkpoint error) would fail the same way again, so the trial does not raise it: it ends at once
with a final report carrying :data:`FAILED_KEY` = 1 and the reason under :data:`REASON_KEY`,
which the MLflow logger records as a FAILED run and the runner counts as a failed trial.
"""

from __future__ import annotations

import os
import traceback
from typing import Any, ClassVar

from ray import tune

__all__ = ["DEVICE_KEY", "FAILED_KEY", "METHOD_KEY", "METRIC_KEY", "REASON_KEY", "MethodTrainable"]

from ftsweep.methods.base import METHOD_KEY, METRIC_KEY

#: result keys of a trial that ended on an error of its own
FAILED_KEY = "error/failed"
REASON_KEY = "error/reason"
#: result key naming the device a trial really used (``cpu``, ``cuda:0 (NVIDIA H200)``)
DEVICE_KEY = "sys/device"


def method_class(name: str) -> type:
    """The Ray-free method class a registered method's Trainable wraps."""
    from ftsweep.registry import methods

    return methods()[name].trainable.method_cls


class MethodTrainable(tune.Trainable):
    """Runs a method object as a Tune trial; ``step`` / checkpoints / ``reset_config`` delegate."""

    method_cls: ClassVar[type | None] = None
    #: the method's config dataclass (set from ``method_cls`` by a subclass)
    config_cls: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("method_cls") is not None:
            cls.config_cls = cls.method_cls.config_cls

    def setup(self, config: dict[str, Any]) -> None:
        self.method: Any = None
        self.failure: str | None = None
        self.metric: str | None = config.get(METRIC_KEY)
        try:
            _check_gpu(config)
            cls = self.method_cls or method_class(config[METHOD_KEY])
            self.method = cls(config, logdir=self.logdir)
        except Exception as e:  # noqa: BLE001 — deterministic: recorded, not retried (module doc)
            self.failure = _reason(e)
        self.device = _device_name(self.method)

    def step(self) -> dict[str, Any]:
        if self.failure is None:
            try:
                result = self.method.step()
            except Exception as e:  # noqa: BLE001 — as in setup
                self.failure = _reason(e)
            else:
                if self.metric is None or self.metric in result:
                    return {**result, DEVICE_KEY: self.device}
                # a misspelt spec metric: Tune's own check is off (a trial failing at set-up
                # reports none), so the trial says what it does report
                reported = ", ".join(sorted(k for k in result if k.startswith(("val/", "best/", "train/"))))
                self.failure = (
                    f"ConfigError: metric: {self.metric!r} is not among the results of this method; "
                    f"it reports {reported}"
                )
        return {"done": True, FAILED_KEY: 1.0, REASON_KEY: self.failure, DEVICE_KEY: self.device}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.method is not None:
            self.method.save_checkpoint(checkpoint_dir)

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        if self.method is not None:
            self.method.load_checkpoint(checkpoint)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Actor reuse: rebuild the method for the new config in the same process."""
        self.setup(new_config)
        self.config = new_config
        return True


def _check_gpu(config: dict[str, Any]) -> None:
    """A trial given GPUs with ``device: auto`` must see one: it fails instead of silently
    training on the CPU (``device: cpu`` is honoured)."""
    import ray

    gpus = ray.get_gpu_ids() if ray.is_initialized() else []
    if gpus and config.get("device", "auto") == "auto":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(
                f"this trial was given GPU(s) {gpus} but torch sees no CUDA device "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); set device: cpu to "
                "train on the CPU on purpose"
            )


def _device_name(method: Any) -> str:
    device = getattr(method, "device", None)
    if device is None:
        return "none"
    if getattr(device, "type", "") == "cuda":
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _reason(e: BaseException) -> str:
    """``Type: message`` and the innermost frame (where the method failed)."""
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"[:2000]

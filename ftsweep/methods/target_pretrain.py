"""Stage-1 contrastive target pretraining as a method (target pretraining paper).

One ``step()`` is one pretraining epoch of :class:`ftsweep.pretrain.TargetPretrainer`
(BYOL or MoCo v2 with the L2 pull to the initial weights). Results:

- ``train/loss``, ``train/ssl``, ``train/l2_init`` — batch means of the epoch;
- ``cluster/train_acc``, ``cluster/test_acc`` — clustering accuracy (%) of the backbone
  features (k-means, K = #classes, Hungarian mapping; Eq. 8-9) on the stage-1 pool and the test
  part, every ``eval_every`` epochs and at the last one (the latest values are repeated between
  evaluations);
- ``cluster/train_acc_before``, ``cluster/test_acc_before`` — the same before stage 1
  (Table 10), computed at setup;
- ``momentum`` (target / key-encoder momentum), ``lr``, ``epoch``, ``time/epoch_s``.

It is not a :class:`~ftsweep.methods.base.FineTuner`: there is no classifier, validation split
or model selection in stage 1. The config class is :class:`ftsweep.pretrain.TargetPretrainConfig`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from ftsweep.methods.base import resolve_trial_config
from ftsweep.pretrain import TargetPretrainConfig, TargetPretrainer

__all__ = ["TargetPretrainConfig", "TargetPretrainMethod"]


class TargetPretrainMethod:
    """BYOL / MoCo v2 target pretraining, one epoch per ``step()``.

    Args:
        config: fields of :class:`TargetPretrainConfig` (Tune's bookkeeping keys are dropped).
        logdir: unused (stage 1 writes its outputs through its checkpoints).
    """

    config_cls: ClassVar[type[TargetPretrainConfig]] = TargetPretrainConfig
    cfg: TargetPretrainConfig

    def __init__(self, config: Mapping[str, Any], *, logdir: str | None = None) -> None:
        self.logdir = logdir
        self.setup(config)

    def setup(self, config: Mapping[str, Any]) -> None:
        self.cfg = self.config_cls.from_dict(resolve_trial_config(config))
        self.trainer = TargetPretrainer(self.cfg)
        before = self.trainer.clustering()
        self.before = {f"{k}_before": v for k, v in before.items()}
        self.cluster = dict(before)

    @classmethod
    def reported_metrics(cls, cfg: TargetPretrainConfig) -> frozenset[str]:
        """The ``train/`` metrics of every epoch (no validation split in stage 1): the loss, its
        SSL term and, with ``l2_init`` > 0, the L2-init term (``ftsweep.runner.check_jobs``)."""
        return frozenset({"train/loss", "train/ssl", *(("train/l2_init",) if cfg.l2_init > 0 else ())})

    @classmethod
    def logged_metrics(cls, cfg: TargetPretrainConfig) -> frozenset[str]:
        """Every metric some epoch reports (the run's columns, ``table.metric``): the ``train/``
        ones, the clustering accuracies before and after, momentum, lr, epoch and timings."""
        cluster = {f"cluster/{part}_acc{when}" for part in ("train", "test") for when in ("", "_before")}
        other = {"epoch", "sched/epoch", "sched/momentum", "sched/lr", "time/train_s", "time/epoch_s"}
        return cls.reported_metrics(cfg) | cluster | other

    @property
    def epoch(self) -> int:
        return self.trainer.epoch

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        logs = self.trainer.train_epoch()
        t_train = time.perf_counter() - t0
        cfg = self.cfg
        last = self.trainer.epoch >= cfg.epochs
        if last or (cfg.eval_every and self.trainer.epoch % cfg.eval_every == 0):
            self.cluster = self.trainer.clustering()
        result: dict[str, float] = {f"train/{k}": float(v) for k, v in logs.items()}
        result.update(self.cluster)
        result.update(self.before)
        result.update(
            {
                "epoch": float(self.trainer.epoch),
                "sched/epoch": float(self.trainer.epoch),  # its loss / clustering move from epoch 1
                # under sched/: a metric named as a config field (lr, momentum) would shadow it
                "sched/momentum": float(self.trainer.momentum()),
                "sched/lr": float(self.trainer.optimizer.param_groups[0]["lr"]),
                "time/train_s": t_train,
                "time/epoch_s": time.perf_counter() - t0,
            }
        )
        if last:
            result["done"] = True
        return result

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = {"trainer": self.trainer.state_dict(), "cluster": self.cluster, "before": self.before}
        tmp = Path(checkpoint_dir) / "state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, Path(checkpoint_dir) / "state.pt")
        # the stage-1 output in the form stage 2 loads (format="ftsweep")
        torch.save(self.trainer.backbone_state(), Path(checkpoint_dir) / "backbone.pt")

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        assert isinstance(checkpoint, str), f"expected a checkpoint directory, got {type(checkpoint)}"
        state = torch.load(
            Path(checkpoint) / "state.pt", map_location=self.trainer.device, weights_only=False
        )
        self.trainer.load_state_dict(state["trainer"])
        self.cluster = dict(state["cluster"])
        self.before = dict(state["before"])

    def reset_config(self, new_config: Mapping[str, Any]) -> bool:
        """Rebuild everything for the new config in the same process (Tune's actor reuse)."""
        self.setup(new_config)
        return True

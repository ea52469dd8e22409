"""SCHaNe: CE + supervised contrastive loss with hard negatives (schane.md Sec. 3, Eq. 1-4).

Every image of a batch gives two AutoAugment views (Sec. 3.4, App. A.2); both views go through
the encoder, the classifier head's logits of all 2B views give the CE term (Eq. 2) and the
L2-normalised encoder outputs of all 2B views give the contrastive term, views of the same label
being positives (Sec. 3.4: "The encoder output ... is used to calculate the contrastive
objective function ... L2 normalization on encoder outputs"). There is no projector.

``objective`` selects the row of the Table 3 ablation; every contrastive row is weighted "in the
same way as for SCHaNe" (Sec. 5.2): ``(1 − λ)·CE + λ·X`` with

- ``schane``: X = SCLN (Eq. 3-4, :func:`ftsweep.losses.scln_loss`, ``scln_variant``);
- ``ce_supcon``: X = SupCon without hard-negative weights (Khosla et al. ``L_out``, which is
  SCLN's paper reading with β ≡ 1);
- ``ce_simclr``: X = NT-Xent on the two views (labels unused);
- ``ce``: plain CE on both views (λ is ignored; the same as λ = 0).

Regularisation (App. A.2): "a dropout rate of 0.1" — ``dropout`` is applied to the encoder
output y_i = Enc(z_i) that feeds both terms (the classifier head and, L2-normalised, SCLN),
in training mode only; and early stopping "when the validation loss does not decrease for 10
epochs" — ``early_stop_patience = 10`` (the shared mechanism of ``FineTuner``; model
selection stays on ``val/acc``). The paper does not say where its dropout sits; the BEiT-3 code
base it builds on exposes only stochastic depth (``--drop_path``, default 0.1), which ftsweep's
backbone-agnostic method cannot apply to a CNN (docs/deviations.md).

Evaluation beyond the base metrics, at the end of training (the last epoch or the one that
stops early), on frozen features of the final model: ``test/isotropy`` (Mu & Viswanath,
App. A.3, on the L2-normalised encoder outputs of the test part) and, for every ``(n, k)`` of
``fewshot_ways × fewshot_shots``, ``fewshot/{n}way{k}shot`` and ``fewshot/{n}way{k}shot_ci95``
(N-way K-shot logistic-regression episodes with ``fewshot_query`` queries per class, Sec. 4;
accuracies in percent). The episodes are drawn from the *novel* classes of a few-shot benchmark
(``cifar_fs``, ``fc100``, ``mini_imagenet``, ``tiered_imagenet``: classes never seen in
fine-tuning, as in Table 1) and, on any other dataset, from its test part (classes seen in
fine-tuning); ``fewshot_split`` chooses, and ``fewshot/on_novel`` (1 or 0) records which was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ftsweep.config import ConfigError, TrainConfig, check
from ftsweep.engine import StepOutput, extract_features
from ftsweep.losses import nt_xent_loss, scln_loss, supcon_loss
from ftsweep.methods.base import FineTuner
from ftsweep.metrics import fewshot_eval, isotropy_score

__all__ = ["FEWSHOT_SPLITS", "OBJECTIVES", "SchaneConfig", "SchaneMethod"]

OBJECTIVES = ("schane", "ce", "ce_simclr", "ce_supcon")
#: where few-shot episodes come from: ``auto`` = the novel classes when the dataset has them
FEWSHOT_SPLITS = ("auto", "novel", "test")
#: name under which each objective's contrastive term is logged (``train/<name>``)
_TERM_LOG = {"schane": "scln", "ce_supcon": "supcon", "ce_simclr": "nt_xent"}


@dataclass(frozen=True)
class SchaneConfig(TrainConfig):
    """SCHaNe's hyperparameters (Eq. 1, App. A.2) and its evaluation protocol.

    The optimiser defaults are App. A.2's: Adam with weight decay 0.05 (AdamW, as the BEiT-3 code
    base the paper builds on), lr 1e-4, batch 1024, 100 epochs (the few-shot datasets'; the
    full datasets of Table 2 train 50).

    Attributes:
        lambda_: λ ∈ [0, 1], weight of the contrastive term in Eq. 1 (paper optimum 0.9).
        temperature: τ > 0 (paper optimum 0.5).
        scln_variant: ``paper`` or ``official`` reading of Eq. 4 (docs/deviations.md).
        detach_beta: treat the Eq. 3 weights β as constants; None = the variant's default.
        objective: ``schane``, ``ce``, ``ce_simclr`` or ``ce_supcon`` (Table 3 rows).
        dropout: dropout rate on the encoder output during training (App. A.2: 0.1).
        early_stop_patience: stop once ``val/loss`` has not decreased for this many epochs
            (App. A.2: 10); None trains all ``epochs``.
        fewshot_split: ``auto`` (novel classes when the dataset has them, else the test part),
            ``novel`` (required: an error on a dataset without novel classes) or ``test``.
        fewshot_ways / fewshot_shots: N and K values of the few-shot evaluation (all pairs are
            evaluated); both empty = no few-shot evaluation.
        fewshot_query: query images per class (paper: 15).
        fewshot_episodes: episodes per (N, K) (paper: 3,000 tasks per run).
    """

    method: ClassVar[str] = "schane"

    epochs: int = 100
    batch_size: int = 1024
    optimizer: str = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.05
    lambda_: float = 0.9
    temperature: float = 0.5
    scln_variant: str = "paper"
    detach_beta: bool | None = None
    objective: str = "schane"
    dropout: float = 0.1
    early_stop_patience: int | None = 10
    fewshot_split: str = "auto"
    fewshot_ways: tuple[int, ...] = ()
    fewshot_shots: tuple[int, ...] = ()
    fewshot_query: int = 15
    fewshot_episodes: int = 3000

    def validate(self) -> None:
        super().validate()
        check(self.lambda_, "lambda_", ge=0, le=1)
        check(self.temperature, "temperature", gt=0)
        check(self.scln_variant, "scln_variant", choices=("paper", "official"))
        check(self.objective, "objective", choices=OBJECTIVES)
        check(self.dropout, "dropout", ge=0, lt=1)
        check(self.fewshot_split, "fewshot_split", choices=FEWSHOT_SPLITS)
        for n in self.fewshot_ways:
            check(n, "fewshot_ways", ge=2)
        for k in self.fewshot_shots:
            check(k, "fewshot_shots", ge=1)
        if bool(self.fewshot_ways) != bool(self.fewshot_shots):
            field, value = (
                ("fewshot_shots", self.fewshot_shots)
                if self.fewshot_ways
                else ("fewshot_ways", self.fewshot_ways)
            )
            raise ConfigError(field, value, "give both fewshot_ways and fewshot_shots, or neither")
        check(self.fewshot_query, "fewshot_query", ge=1)
        check(self.fewshot_episodes, "fewshot_episodes", ge=1)
        self._check_novel_classes()

    def _check_novel_classes(self) -> None:
        from ftsweep.data import DATASETS, get_dataset_info

        info = get_dataset_info(self.dataset)
        novel = info.num_novel_classes
        if self.fewshot_split == "test" or (novel is None and self.fewshot_split == "auto"):
            for n in self.fewshot_ways:  # episodes from the test split's classes
                if n > info.num_classes:
                    raise ConfigError(
                        "fewshot_ways",
                        n,
                        f"must be <= the {info.num_classes} classes of {self.dataset}'s test split, "
                        "which the episodes are drawn from",
                    )
        if novel is None:
            if self.fewshot_split == "novel":
                with_novel = sorted(n for n, i in DATASETS.items() if i.num_novel_classes is not None)
                raise ConfigError(
                    "fewshot_split",
                    "novel",
                    f"dataset {self.dataset!r} has no novel classes; use auto or test, "
                    f"or a few-shot benchmark ({', '.join(with_novel)})",
                )
            return
        if self.fewshot_split != "test":
            for n in self.fewshot_ways:
                check(n, "fewshot_ways", ge=2, le=novel)


class SchaneMethod(FineTuner):
    """Two-view fine-tuning with ``(1 − λ)·CE + λ·SCLN`` (or a Table 3 ablation row)."""

    config_cls = SchaneConfig
    cfg: SchaneConfig
    train_views: ClassVar[tuple[str, ...]] = ("autoaugment", "autoaugment")

    def build_heads(self, num_features: int) -> dict[str, nn.Module]:
        """The classifier and the dropout on the encoder output (App. A.2)."""
        return {**super().build_heads(num_features), "dropout": nn.Dropout(self.cfg.dropout)}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder outputs y = Enc(z) with shape (B, D), through ``dropout`` (train mode only)."""
        return self.model["dropout"](self.model["backbone"](x))

    @classmethod
    def loss_terms(cls, cfg: Any) -> tuple[str, ...]:
        return ("ce",) if cfg.objective == "ce" else ("ce", _TERM_LOG[cfg.objective])

    def training_step(self, batch: Any) -> StepOutput:
        (x1, x2), y, _ = batch
        assert x1.shape == x2.shape, f"views must have the same shape but found {x1.shape} and {x2.shape}"
        b = x1.shape[0]
        x = torch.cat([x1, x2]).to(self.device)
        y2 = torch.cat([y, y]).to(self.device)
        feats = self.features(x)
        ce = F.cross_entropy(self.model["classifier"](feats), y2)
        objective = self.cfg.objective
        if objective == "ce":
            return ce, {"ce": ce}
        z = F.normalize(feats, dim=1)
        tau = self.cfg.temperature
        if objective == "schane":
            con = scln_loss(z, y2, tau, variant=self.cfg.scln_variant, detach_beta=self.cfg.detach_beta)
        elif objective == "ce_supcon":
            con = supcon_loss(z, y2, tau, variant="paper")
        else:
            con = nt_xent_loss(z[:b], z[b:], tau)
        lam = self.cfg.lambda_
        return (1 - lam) * ce + lam * con, {"ce": ce, _TERM_LOG[objective]: con}

    def split_features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised encoder outputs (N, D) and labels (N,) of ``split`` (eval view)."""
        self.model.eval()
        loader = self.eval_loader(split)
        if self.cfg.max_eval_batches is not None:
            loader = islice(loader, self.cfg.max_eval_batches)
        feats, labels = extract_features(lambda x: F.normalize(self.encode(x), dim=1), loader, self.device)
        return feats, labels

    def fewshot_split(self) -> str:
        """``novel`` or ``test``: the split few-shot episodes are drawn from."""
        split = self.cfg.fewshot_split
        if split == "auto":
            return "test" if self.data.novel is None else "novel"
        if split == "novel" and self.data.novel is None:
            raise ConfigError("fewshot_split", split, f"dataset {self.cfg.dataset!r} loaded no novel classes")
        return split

    @classmethod
    def extra_eval_passes(cls, cfg: Any) -> dict[str, int]:
        """Beside the shared ones, the last epoch's features of the test split (isotropy, few-shot
        episodes drawn from test) and of the novel classes (episodes drawn from them)."""
        out = dict(super().extra_eval_passes(cfg))
        out["test"] = out.get("test", 0) + 1
        if cfg.fewshot_ways and cfg.fewshot_split != "test":  # novel, or auto on a dataset with one
            out["novel"] = out.get("novel", 0) + 1
        return out

    @classmethod
    def logged_metrics(cls, cfg: Any) -> frozenset[str]:
        """Beside the shared ones, at the last epoch: ``test/isotropy`` and, with
        ``fewshot_ways``, ``fewshot/on_novel`` and ``fewshot/{n}way{k}shot`` (``…_ci95``) for
        every (N, K)."""
        pairs = [f"fewshot/{n}way{k}shot" for n in cfg.fewshot_ways for k in cfg.fewshot_shots]
        fewshot = {"fewshot/on_novel", *pairs, *(f"{p}_ci95" for p in pairs)} if pairs else set()
        return super().logged_metrics(cfg) | {"test/isotropy", *fewshot}

    def epoch_metrics(self, last: bool) -> dict[str, float]:
        if not last:
            return {}
        feats, labels = self.split_features("test")
        out = {"test/isotropy": isotropy_score(feats)}
        cfg = self.cfg
        if not cfg.fewshot_ways:
            return out
        split = self.fewshot_split()
        if split == "novel":
            feats, labels = self.split_features("novel")
        out["fewshot/on_novel"] = float(split == "novel")
        for n in cfg.fewshot_ways:
            for k in cfg.fewshot_shots:
                mean, ci95 = fewshot_eval(
                    feats,
                    labels,
                    n_way=n,
                    k_shot=k,
                    n_query=cfg.fewshot_query,
                    n_episodes=cfg.fewshot_episodes,
                    seed=cfg.seed,
                )
                out[f"fewshot/{n}way{k}shot"] = 100.0 * mean
                out[f"fewshot/{n}way{k}shot_ci95"] = 100.0 * ci95
        return out

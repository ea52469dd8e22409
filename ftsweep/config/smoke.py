"""``--smoke``: any spec shrunk to a CPU check of a few minutes on the offline digits data.

One place says what a smoke run changes, in this order (a later layer wins):

1. the spec's own layers (``config``, ``dataset_config`` — dropped under smoke —, the method's
   ``config``);
2. the method's smoke values (its registry record's ``smoke``), for keys its search space does
   not sweep — e.g. COIN's α = 0.5 so that both stages run in two epochs;
3. :data:`SMOKE_OVERRIDES`, the same for every method (only the keys the method's config has);
4. the spec's ``smoke:`` mapping.

Layers 3 and 4 also replace a search-space axis of the same key (``epochs``); every grid axis and
choice keeps its first two values; one seed, at most two samples, one CPU, no GPU. The dataset is
the spec's ``smoke.dataset``, else the method's smoke dataset, else ``digits``; the backbone and
the checkpoint likewise default to ``small_cnn`` and ``auto``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SMOKE_OVERRIDES", "SmokeSettings", "smoke_layers"]

#: what ``--smoke`` does to every method (the keys its config has)
SMOKE_OVERRIDES: dict[str, Any] = {
    "epochs": 2,
    "max_train_batches": 2,
    "max_eval_batches": 2,
    "batch_size": 32,
    "eval_batch_size": 128,
    "device": "cpu",
    "num_workers": 0,
    "warmup_epochs": 0,
    "milestones": [],
    "checkpoint_format": "auto",
    "image_size": None,
    "resize_size": None,
}

#: spec-level keys of ``smoke:`` that are not config fields
SPEC_LEVEL = ("dataset", "backbone", "pretrained")


@dataclass(frozen=True)
class SmokeSettings:
    """The spec's ``smoke:`` mapping split into its spec-level keys and its config values."""

    dataset: str | None
    backbone: str
    pretrained: str
    config: dict[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> SmokeSettings:
        cfg = {k: v for k, v in raw.items() if k not in SPEC_LEVEL}
        return cls(
            dataset=raw.get("dataset"),
            backbone=str(raw.get("backbone", "small_cnn")),
            pretrained=str(raw.get("pretrained", "auto")),
            config=cfg,
        )

    def dataset_for(self, method_smoke: Mapping[str, Any]) -> str:
        """The one dataset a method's smoke job runs on."""
        return self.dataset or str(method_smoke.get("dataset", "digits"))


def smoke_layers(
    method_smoke: Mapping[str, Any], spec_smoke: Mapping[str, Any], space: Mapping[str, Any], fields: set[str]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The fixed-value layers a smoke job applies on top of the spec's, lowest first, and the
    search-space axes they replace.

    Args:
        method_smoke: the method record's ``smoke`` values.
        spec_smoke: the config values of the spec's ``smoke:``.
        space: the job's resolved search space.
        fields: the method config's field names.
    """
    method_layer = {k: v for k, v in method_smoke.items() if k not in space and k != "dataset"}
    global_layer = {k: v for k, v in SMOKE_OVERRIDES.items() if k in fields}
    spec_layer = dict(spec_smoke)
    return [method_layer, global_layer, spec_layer], {*global_layer, *spec_layer}

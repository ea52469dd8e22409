"""Loss functions: pure functions of tensors with shape docstrings and paper-equation references."""

from ftsweep.losses.focal_supcon import focal_supcon_loss
from ftsweep.losses.mixup import (
    HardPairs,
    MixedBatch,
    contrastive_set,
    manifold_mixup,
    mixup_hard_pairs,
    sample_beta,
    soft_label_positive_mask,
)
from ftsweep.losses.schane import schane_loss, scln_loss
from ftsweep.losses.semi import fixmatch_loss, mean_teacher_loss, pseudo_label_mask, uda_loss
from ftsweep.losses.soft_ce import soft_cross_entropy
from ftsweep.losses.ssl import byol_loss, l2_to_init, moco_infonce_loss, nt_xent_loss
from ftsweep.losses.supcon import supcon_loss

__all__ = [
    "HardPairs",
    "MixedBatch",
    "byol_loss",
    "contrastive_set",
    "fixmatch_loss",
    "focal_supcon_loss",
    "l2_to_init",
    "manifold_mixup",
    "mean_teacher_loss",
    "mixup_hard_pairs",
    "moco_infonce_loss",
    "nt_xent_loss",
    "pseudo_label_mask",
    "sample_beta",
    "schane_loss",
    "scln_loss",
    "soft_cross_entropy",
    "soft_label_positive_mask",
    "supcon_loss",
    "uda_loss",
]

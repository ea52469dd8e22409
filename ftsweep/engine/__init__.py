"""The train/eval engine: loop, optimisers, schedules, seeding, model selection."""

from ftsweep.engine.loop import (
    BestTracker,
    EarlyStopping,
    NonFiniteLossError,
    StepOutput,
    cycle,
    epoch_seed,
    evaluate,
    extract_features,
    make_loader,
    resolve_device,
    seed_everything,
    to_device,
    train_epoch,
)
from ftsweep.engine.optim import build_optimizer, build_scheduler, lr_factor, param_groups
from ftsweep.engine.schedules import fixmatch_lr_factor, sigmoid_rampup

__all__ = [
    "BestTracker",
    "EarlyStopping",
    "NonFiniteLossError",
    "StepOutput",
    "build_optimizer",
    "build_scheduler",
    "cycle",
    "epoch_seed",
    "evaluate",
    "extract_features",
    "fixmatch_lr_factor",
    "lr_factor",
    "make_loader",
    "param_groups",
    "resolve_device",
    "seed_everything",
    "sigmoid_rampup",
    "to_device",
    "train_epoch",
]

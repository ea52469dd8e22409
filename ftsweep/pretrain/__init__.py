"""Self-supervised pretraining (SimCLR for ftsweep's own default checkpoint)."""

from ftsweep.pretrain.simclr import SimCLRConfig, default_checkpoint, pretrain_simclr

__all__ = ["SimCLRConfig", "default_checkpoint", "pretrain_simclr"]

"""Backbones, heads and checkpoint import."""

from ftsweep.backbones.checkpoint import (
    PROJECTION_FORMATS,
    CheckpointError,
    check_backbone_weights,
    check_timm_weights,
    detect_format,
    load_backbone_weights,
    load_projection_head,
    load_state_dict_file,
    remap_state_dict,
    resolve_format,
)
from ftsweep.backbones.factory import (
    BACKBONES,
    create_backbone,
    is_known_backbone,
    list_backbones,
    meta_backbone,
    register_backbone,
)
from ftsweep.backbones.heads import ProjectionHead, classifier_head, projection_mlp
from ftsweep.backbones.small_cnn import SmallCNN
from ftsweep.backbones.weights import (
    WEIGHTS,
    NamedWeights,
    ResolvedWeights,
    is_named_weights,
    list_weights,
    load_named_weights,
    resolve_weights,
    weights_file,
)

__all__ = [
    "BACKBONES",
    "PROJECTION_FORMATS",
    "CheckpointError",
    "ProjectionHead",
    "NamedWeights",
    "ResolvedWeights",
    "SmallCNN",
    "WEIGHTS",
    "classifier_head",
    "check_backbone_weights",
    "check_timm_weights",
    "create_backbone",
    "meta_backbone",
    "detect_format",
    "is_known_backbone",
    "is_named_weights",
    "list_backbones",
    "list_weights",
    "load_backbone_weights",
    "load_named_weights",
    "load_projection_head",
    "load_state_dict_file",
    "projection_mlp",
    "register_backbone",
    "remap_state_dict",
    "resolve_format",
    "resolve_weights",
    "weights_file",
]

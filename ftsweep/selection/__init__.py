"""Selection of pre-training data for fine-tuning (UOT paper, ``uot_selection.md``).

Units (classes or k-means clusters) of the pre-training set are scored against the target
classes and the top-k are reused in fine-tuning: UOT selection (Eq. 5), the Greedy-OT baseline
(Cui et al. 2018), random and label-based selection, and the recall rate of Table 4.
"""

from ftsweep.selection.baselines import label_selection, random_selection
from ftsweep.selection.features import (
    FEATURE_LAYERS,
    cache_path,
    cached_features,
    checkpoint_digest,
    extract_features,
    resolve_feature_layer,
)
from ftsweep.selection.greedy_ot import (
    emd_similarity,
    greedy_ot_scores,
    greedy_ot_select,
    pairwise_cost,
)
from ftsweep.selection.ranking import select
from ftsweep.selection.recall import recall_rate
from ftsweep.selection.units import class_means, cluster_units
from ftsweep.selection.uot import cosine_cost, uot_plan, uot_scores

__all__ = [
    "FEATURE_LAYERS",
    "cache_path",
    "cached_features",
    "checkpoint_digest",
    "class_means",
    "cluster_units",
    "cosine_cost",
    "emd_similarity",
    "extract_features",
    "greedy_ot_scores",
    "greedy_ot_select",
    "label_selection",
    "pairwise_cost",
    "random_selection",
    "recall_rate",
    "resolve_feature_layer",
    "select",
    "uot_plan",
    "uot_scores",
]

"""Evaluation metrics: classification accuracies, S_Dbw, isotropy, clustering accuracy and
few-shot evaluation on frozen features. Arrays or tensors in, Python floats out."""

from ftsweep.metrics.classification import mean_per_class_accuracy, top1_accuracy, topk_accuracy
from ftsweep.metrics.clustering import clustering_accuracy, kmeans_clustering_accuracy
from ftsweep.metrics.fewshot import fewshot_eval
from ftsweep.metrics.isotropy import isotropy_score
from ftsweep.metrics.s_dbw import S_DBW_VARIANTS, s_dbw

__all__ = [
    "S_DBW_VARIANTS",
    "clustering_accuracy",
    "fewshot_eval",
    "isotropy_score",
    "kmeans_clustering_accuracy",
    "mean_per_class_accuracy",
    "s_dbw",
    "top1_accuracy",
    "topk_accuracy",
]

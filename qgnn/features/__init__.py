"""Quantum features: the FeaturePipeline and the feature maps of its Measurements."""

from qgnn.features.cache import BlobCache, CacheCorruptionWarning, cache_dir, stable_hash
from qgnn.features.maps import (
    TIME_POOLINGS,
    excitation_histogram,
    excitation_matrix,
    label_observables,
    label_observables_matrix,
    label_vocabulary,
    node_correlations,
    node_observables,
    node_occupations,
    pool_times,
)
from qgnn.features.pipeline import FeaturePipeline, GraphResult

__all__ = [
    "TIME_POOLINGS",
    "BlobCache",
    "CacheCorruptionWarning",
    "FeaturePipeline",
    "GraphResult",
    "cache_dir",
    "excitation_histogram",
    "excitation_matrix",
    "label_observables",
    "label_observables_matrix",
    "label_vocabulary",
    "node_correlations",
    "node_observables",
    "node_occupations",
    "pool_times",
    "stable_hash",
]

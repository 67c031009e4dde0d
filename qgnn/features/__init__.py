"""Quantum features: the FeaturePipeline and the feature maps of its Measurements."""

from qgnn.features.cache import BlobCache, CacheCorruptionWarning, cache_dir, stable_hash
from qgnn.features.maps import excitation_histogram, excitation_matrix, node_correlations, node_occupations
from qgnn.features.pipeline import FeaturePipeline, GraphResult

__all__ = [
    "BlobCache",
    "CacheCorruptionWarning",
    "FeaturePipeline",
    "GraphResult",
    "cache_dir",
    "excitation_histogram",
    "excitation_matrix",
    "node_correlations",
    "node_occupations",
    "stable_hash",
]

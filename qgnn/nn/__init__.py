"""Quantum features in PyTorch Geometric: transform, dataset, models and training.

- :class:`QuantumFeatures` — a ``BaseTransform`` attaching ``x_q``, ``pe_q``,
  ``edge_attr_q``, ``hist_q`` and ``q_ok`` measured by a
  :class:`~qgnn.features.FeaturePipeline` (evaluation times concatenated or
  pooled, ``pooling=``), and the per-label observables ``g_q`` with a
  ``label_vocabulary``;
- :class:`QuantumDataset` — a shipped dataset featurised once and stored on disk;
- :class:`QuantumGIN`, :class:`QuantumGPS`, :class:`GIN` — PyG models;
- :func:`fit_evaluate_gnn`, :func:`plot_learning_curves`, :func:`evaluate_gnn` — cross-validation folds;
- :class:`RydbergEvolution`, :class:`AtomGraph` — the trainable Rydberg evolution layer
  (:mod:`qgnn.nn.rydberg`); kernel-target alignment of its pulse (:mod:`qgnn.nn.alignment`)
  and :class:`QuantumEvolutionGNN`, trained end to end (:mod:`qgnn.nn.qegnn`).
"""

from __future__ import annotations

from qgnn.nn.alignment import fit_kernel_alignment, kernel_target_alignment, qek_trained_source
from qgnn.nn.dataset import QuantumDataset
from qgnn.nn.models import GIN, QuantumGIN, QuantumGPS
from qgnn.nn.qegnn import QuantumEvolutionGNN, qegnn_folds
from qgnn.nn.rydberg import AtomGraph, RydbergEvolution, RydbergOutput
from qgnn.nn.training import (
    MODELS,
    FoldOutcome,
    build_model,
    evaluate_gnn,
    fit_evaluate_gnn,
    plot_learning_curves,
)
from qgnn.nn.transforms import (
    QuantumFeatures,
    QuantumFeatureWarning,
    attach_quantum_features,
    correlation_encodings,
)

__all__ = [
    "GIN",
    "MODELS",
    "AtomGraph",
    "FoldOutcome",
    "QuantumEvolutionGNN",
    "RydbergEvolution",
    "RydbergOutput",
    "QuantumDataset",
    "QuantumFeatureWarning",
    "QuantumFeatures",
    "QuantumGIN",
    "QuantumGPS",
    "attach_quantum_features",
    "build_model",
    "correlation_encodings",
    "evaluate_gnn",
    "fit_evaluate_gnn",
    "fit_kernel_alignment",
    "kernel_target_alignment",
    "plot_learning_curves",
    "qegnn_folds",
    "qek_trained_source",
]

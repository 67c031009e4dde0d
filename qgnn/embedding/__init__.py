"""Graph → neutral-atom register (unit-disk embedding).

:func:`embed` places one atom per node so that atoms of an edge blockade each
other and atoms of a non-edge do not, within the device's limits, and returns
an :class:`Embedding` (positions in µm, node ↔ qubit map, a validated
``pulser.Register`` — on a new register layout, or on a pre-calibrated
layout's traps when the device accepts no new ones — and an
:class:`EmbeddingQuality` report).
:func:`embed_dataset` does it for a whole dataset and returns an
:class:`EmbeddingReport`.
"""

from qgnn.embedding.embedder import (
    DEFAULT_MARGIN,
    DEFAULT_RABI_FREQUENCY,
    AnyDevice,
    Embedding,
    EmbeddingWarning,
    blockade_radius,
    embed,
)
from qgnn.embedding.obstructions import max_unit_disk_degree
from qgnn.embedding.quality import EmbeddingQuality, assess
from qgnn.embedding.report import EmbeddingRecord, EmbeddingReport, embed_dataset

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_RABI_FREQUENCY",
    "AnyDevice",
    "Embedding",
    "EmbeddingQuality",
    "EmbeddingRecord",
    "EmbeddingReport",
    "EmbeddingWarning",
    "assess",
    "blockade_radius",
    "embed",
    "embed_dataset",
    "max_unit_disk_degree",
]

"""Shipped graph datasets, your own TU-format datasets, and graph conversions.

:func:`load_dataset` reads the TU-format benchmarks (MUTAG, PTC_*, AIDS,
NCI1, IMDB-BINARY, PROTEINS) and ESOL shipped with qgnn, checking every
file's SHA-256, or your own dataset from a folder in the TU format, and
returns a :class:`GraphDataset` of ``networkx`` graphs (its ``sha256`` says
what was read). :func:`to_pyg` / :func:`from_pyg` convert between networkx
and PyTorch Geometric, with one one-hot width per dataset;
:func:`validate_graph` is the input check shared by every stage taking a
graph, and :func:`graph_index` the one rule for reading a graph's dataset
index. :func:`from_smiles` turns a SMILES string into the heavy-atom graph
ESOL's molecules get (RDKit, extra ``qgnn[chem]``).
"""

from __future__ import annotations

from qgnn.data.checksums import datasets_root
from qgnn.data.convert import from_pyg, to_pyg
from qgnn.data.dataset import GraphDataset
from qgnn.data.registry import DATASET_NAMES, canonical_name, dataset_summary, load_dataset
from qgnn.data.smiles import from_smiles
from qgnn.data.validation import graph_index, validate_graph

__all__ = [
    "DATASET_NAMES",
    "GraphDataset",
    "canonical_name",
    "dataset_summary",
    "datasets_root",
    "from_pyg",
    "from_smiles",
    "graph_index",
    "load_dataset",
    "to_pyg",
    "validate_graph",
]

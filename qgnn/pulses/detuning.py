"""Node labels in the Hamiltonian: per-atom local detuning through Pulser's DMM.

A :class:`NodeDetuning` turns a node attribute (``"label"``, ``"element"``, …)
into a weight w_i ∈ [0, 1] per atom; with a detuning map modulator (DMM) the
Hamiltonian gains the term −w_i·δ_DMM·n_i, δ_DMM ≤ 0 in rad/µs:

    H(t) = Σ_i Ω(t)/2 σx_i − Σ_i [δ(t) + w_i·δ_DMM] n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j.

Atoms with a larger weight are pushed further off resonance, so atoms that
differ only by their label evolve differently. Weights come from a mapping
(attribute value → weight), a callable on the node's attribute dict, or one of
two data-independent defaults: :meth:`NodeDetuning.electronegativity` (Pauling
scale, for molecules) and :func:`label_frequency_weights` (frequency rank
over the graphs you give it — give it the *training* graphs only).

Example:
    >>> import math, networkx as nx
    >>> g = nx.path_graph(3)
    >>> nx.set_node_attributes(g, {0: "C", 1: "N", 2: "C"}, "element")
    >>> nd = NodeDetuning.electronegativity(detuning=-2 * math.pi)
    >>> {k: round(v, 3) for k, v in nd.node_weights(g).items()}
    {0: 0.552, 1: 0.705, 2: 0.552}
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from types import MappingProxyType
from typing import Any

import networkx as nx
import numpy as np

from qgnn.errors import InvalidInputError

#: Pauling electronegativities of the elements found in the shipped molecule datasets
#: (CRC Handbook of Chemistry and Physics, 97th ed., "Electronegativity of the elements").
PAULING_ELECTRONEGATIVITY: Mapping[str, float] = MappingProxyType(
    {
        "H": 2.20, "Li": 0.98, "B": 2.04, "C": 2.55, "N": 3.04, "O": 3.44, "F": 3.98,
        "Na": 0.93, "Mg": 1.31, "Al": 1.61, "Si": 1.90, "P": 2.19, "S": 2.58, "Cl": 3.16,
        "K": 0.82, "Ca": 1.00, "Ti": 1.54, "V": 1.63, "Cr": 1.66, "Mn": 1.55, "Fe": 1.83,
        "Co": 1.88, "Ni": 1.91, "Cu": 1.90, "Zn": 1.65, "Ga": 1.81, "Ge": 2.01, "As": 2.18,
        "Se": 2.55, "Br": 2.96, "Rb": 0.82, "Zr": 1.33, "Ru": 2.2, "Rh": 2.28, "Pd": 2.20,
        "Ag": 1.93, "Cd": 1.69, "In": 1.78, "Sn": 1.96, "Sb": 2.05, "Te": 2.1, "I": 2.66,
        "Cs": 0.79, "Ba": 0.89, "Nd": 1.14, "Gd": 1.20, "Tb": 1.10, "Ho": 1.23, "Yb": 1.10,
        "W": 2.36, "Re": 1.9, "Os": 2.2, "Ir": 2.20, "Pt": 2.28, "Au": 2.54, "Hg": 2.00,
        "Tl": 1.62, "Pb": 2.33, "Bi": 2.02, "U": 1.38,
    }
)  # fmt: skip

_CHI_MIN, _CHI_MAX = 0.79, 3.98  # Cs and F: the ends of the Pauling scale

MIN_NONZERO_WEIGHT = 0.1
"""Smallest non-zero weight of the default maps: a DMM cannot apply a tiny detuning
(Pulser's DMMs refuse |w·δ_DMM| below ``min_avg_abs_detuning``, 2π·0.1 rad/µs on
WeightedAnalogDevice), so with |δ_DMM| ≥ 2π·1 rad/µs every default weight is feasible."""


def electronegativity_weights() -> dict[str, float]:
    """Element → Pauling electronegativity rescaled linearly from [0.79, 3.98] (Cs…F) to [0, 1].

    Caesium gets 0; rescaled values below :data:`MIN_NONZERO_WEIGHT` (the
    alkali and alkaline-earth metals) are raised to it, so the map stays
    feasible on a DMM.
    """
    span = _CHI_MAX - _CHI_MIN
    return {
        element: 0.0 if chi == _CHI_MIN else max(MIN_NONZERO_WEIGHT, (chi - _CHI_MIN) / span)
        for element, chi in PAULING_ELECTRONEGATIVITY.items()
    }


def label_frequency_weights(graphs: Iterable[nx.Graph], attribute: str = "label") -> dict[Hashable, float]:
    """Attribute value → weight spread evenly over [0, 1] by frequency rank.

    The most frequent value gets 0 (no extra detuning), the others are spread
    evenly from :data:`MIN_NONZERO_WEIGHT` (the second most frequent) to 1 (the
    rarest; a second value alone gets 1); ties are broken by the value's
    ``repr`` so the map is deterministic. Compute it on the training graphs
    only: it reads their node labels.

    Args:
        graphs: the graphs whose node attribute values are counted.
        attribute: the node attribute (default ``"label"``).

    Raises:
        InvalidInputError: no graph has a node carrying ``attribute``.
    """
    counts: Counter[Hashable] = Counter()
    for graph in graphs:
        for _, value in graph.nodes(data=attribute):
            if value is not None:
                counts[value] += 1
    if not counts:
        raise InvalidInputError(
            f"label_frequency_weights: no node carries the attribute {attribute!r}; "
            "pass the attribute your graphs use (e.g. attribute='element')"
        )
    ranked = sorted(counts, key=lambda v: (-counts[v], repr(v)))
    rest = ranked[1:]
    spread = [1.0] if len(rest) == 1 else list(np.linspace(MIN_NONZERO_WEIGHT, 1.0, len(rest)))
    return {ranked[0]: 0.0, **{v: float(w) for v, w in zip(rest, spread, strict=True)}}


@dataclass(frozen=True, eq=False)
class NodeDetuning:
    """Node attribute → per-atom DMM weight, and the DMM detuning δ_DMM.

    Args:
        weights: attribute value → weight in [0, 1] (a mapping, stored
            read-only), or a callable taking the node's attribute dict and
            returning its weight.
        detuning: δ_DMM in rad/µs, ≤ 0, applied for the whole schedule.
        attribute: the node attribute the mapping is keyed on (default
            ``"label"``; ignored by a callable, which sees every attribute).

    Raises:
        InvalidInputError: a weight outside [0, 1] or not finite, a positive or
            non-finite detuning, an empty mapping, or a bad attribute name.
    """

    weights: Mapping[Any, float] | Callable[[Mapping[str, Any]], float]
    detuning: float
    attribute: str = "label"

    def __post_init__(self) -> None:
        if not isinstance(self.attribute, str) or not self.attribute:
            raise InvalidInputError(
                f"NodeDetuning: attribute must be a non-empty string, got {self.attribute!r}"
            )
        if isinstance(self.detuning, bool) or not isinstance(self.detuning, Real):
            raise InvalidInputError(
                f"NodeDetuning: detuning must be a number (rad/µs), got {self.detuning!r}"
            )
        detuning = float(self.detuning)
        if not math.isfinite(detuning) or detuning > 0:
            raise InvalidInputError(
                f"NodeDetuning: detuning {detuning} rad/µs must be finite and ≤ 0 "
                "(a DMM only lowers the detuning); e.g. detuning=-2*math.pi"
            )
        object.__setattr__(self, "detuning", detuning)
        if callable(self.weights) and not isinstance(self.weights, Mapping):
            return
        if not isinstance(self.weights, Mapping):
            raise InvalidInputError(
                "NodeDetuning: weights must be a mapping {attribute value: weight in [0, 1]} or a callable, "
                f"got {type(self.weights).__name__}"
            )
        if not self.weights:
            raise InvalidInputError("NodeDetuning: weights is empty; map each attribute value to a weight")
        checked = {
            value: _weight(w, f"weight of {self.attribute}={value!r}") for value, w in self.weights.items()
        }
        object.__setattr__(self, "weights", MappingProxyType(checked))

    @classmethod
    def electronegativity(cls, detuning: float) -> NodeDetuning:
        """Weights from the Pauling electronegativity of each node's ``element`` (see module doc)."""
        return cls(electronegativity_weights(), detuning, attribute="element")

    def node_weights(self, graph: nx.Graph, *, where: str = "graph") -> dict[Hashable, float]:
        """Weight of every node of ``graph`` (node → w ∈ [0, 1]).

        Args:
            graph: the graph whose nodes carry the attribute.
            where: how messages name the graph, e.g. ``"graph 17"``.

        Raises:
            InvalidInputError: a node lacks the attribute, its value is missing
                from the mapping, or a callable returns a value outside [0, 1].
        """
        out: dict[Hashable, float] = {}
        for node, attrs in graph.nodes(data=True):
            if isinstance(self.weights, Mapping):
                if self.attribute not in attrs:
                    raise InvalidInputError(
                        f"{where}: node {node!r} has no {self.attribute!r} attribute, which NodeDetuning "
                        f"reads; set it on every node or use NodeDetuning(attribute=...)"
                    )
                value = attrs[self.attribute]
                try:
                    out[node] = self.weights[value]
                except (KeyError, TypeError):
                    raise InvalidInputError(
                        f"{where}: node {node!r} has {self.attribute}={value!r}, which the NodeDetuning "
                        f"weights do not map (known: {sorted(map(repr, self.weights))[:12]}); add a weight "
                        "for it"
                    ) from None
            else:
                out[node] = _weight(self.weights(dict(attrs)), f"{where}: weight of node {node!r}")
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the constructor call (the read-only weight view itself cannot be pickled)."""
        weights = dict(self.weights) if isinstance(self.weights, Mapping) else self.weights
        return (type(self), (weights, self.detuning, self.attribute))

    def cache_key(self) -> dict[str, Any]:
        """Everything that changes the sequence, for cache keys and results JSON."""
        weights = (
            sorted((repr(k), v) for k, v in self.weights.items())
            if isinstance(self.weights, Mapping)
            else getattr(self.weights, "__qualname__", repr(self.weights))
        )
        return {"weights": weights, "detuning": self.detuning, "attribute": self.attribute}

    def __repr__(self) -> str:
        key = self.cache_key()
        return (
            f"NodeDetuning(weights={key['weights']!r}, detuning={self.detuning!r}, "
            f"attribute={self.attribute!r})"
        )


def _weight(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(f"NodeDetuning: {what} must be a number in [0, 1], got {value!r}")
    out = float(value)
    if not (0.0 <= out <= 1.0):
        raise InvalidInputError(f"NodeDetuning: {what} is {out}; DMM weights lie in [0, 1]")
    return out

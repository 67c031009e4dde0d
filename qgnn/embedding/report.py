"""Embed a whole dataset and report which graphs embed exactly, approximately, or not at all."""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, cast

import networkx as nx
from pulser.devices import AnalogDevice
from tqdm.auto import tqdm

from qgnn.embedding.embedder import (
    DEFAULT_MARGIN,
    DEFAULT_RABI_FREQUENCY,
    AnyDevice,
    Embedding,
    EmbeddingWarning,
    blockade_radius,
    embed,
)
from qgnn.errors import InvalidGraphError, NotEmbeddableError

Status = Literal["exact", "approximate", "failed"]


@dataclass(frozen=True)
class EmbeddingRecord:
    """The outcome of embedding one graph.

    Attributes:
        index: the graph's dataset index (``graph.graph["index"]``, else its position).
        n_nodes: number of nodes.
        n_edges: number of edges.
        status: ``"exact"``, ``"approximate"`` or ``"failed"``.
        reason: why the graph failed or is approximate (``None`` when exact).
        error: the exception class name for a failed graph.
        edges_inside: edges closer than the blockade radius (``None`` when failed).
        n_non_edges: number of non-adjacent node pairs.
        non_edges_outside: non-edges farther than the blockade radius (``None`` when failed).
        edge_margin: radius − longest edge in µm (``None`` when failed or edgeless).
        non_edge_margin: shortest non-edge − radius in µm (``None`` when failed or complete).
        n_violations: pairs breaking the unit-disk condition (``None`` when failed).
        seconds: wall time of the embedding.
        rabi_frequency: the embedding's Ω in rad/µs (``None`` when failed); differs
            from the requested Ω only when it was adjusted on calibrated traps.
    """

    index: int
    n_nodes: int
    n_edges: int
    status: Status
    reason: str | None
    error: str | None
    edges_inside: int | None
    n_non_edges: int
    non_edges_outside: int | None
    edge_margin: float | None
    non_edge_margin: float | None
    n_violations: int | None
    seconds: float
    rabi_frequency: float | None


@dataclass(frozen=True, eq=False)
class EmbeddingReport:
    """Per-graph embedding outcomes of a dataset.

    Attributes:
        records: one :class:`EmbeddingRecord` per input graph, in input order.
        embeddings: the :class:`Embedding` of each graph (``None`` where it failed).
        device_name: the device's name.
        rabi_frequency: the requested Ω in rad/µs.
        blockade_radius: the blockade radius at the requested Ω, in µm.
    """

    records: tuple[EmbeddingRecord, ...]
    embeddings: tuple[Embedding | None, ...]
    device_name: str
    rabi_frequency: float
    blockade_radius: float

    def __len__(self) -> int:
        return len(self.records)

    def summary(self) -> dict[str, object]:
        """Counts by status, the exact share, timing, and failures by error type.

        Returns:
            ``{"n_graphs", "exact", "approximate", "failed", "exact_fraction",
            "mean_seconds", "max_seconds", "failures": {error: count},
            "device", "rabi_frequency", "blockade_radius_um",
            "adjusted_rabi_frequency": graphs embedded at another Ω}``.
        """
        status = Counter(r.status for r in self.records)
        seconds = [r.seconds for r in self.records]
        n = len(self.records)
        return {
            "n_graphs": n,
            "exact": status["exact"],
            "approximate": status["approximate"],
            "failed": status["failed"],
            "exact_fraction": status["exact"] / n if n else 0.0,
            "mean_seconds": sum(seconds) / n if n else 0.0,
            "max_seconds": max(seconds, default=0.0),
            "failures": dict(Counter(r.error for r in self.records if r.error is not None)),
            "device": self.device_name,
            "rabi_frequency": self.rabi_frequency,
            "blockade_radius_um": self.blockade_radius,
            "adjusted_rabi_frequency": sum(
                r.rabi_frequency is not None and r.rabi_frequency != self.rabi_frequency for r in self.records
            ),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write ``{"summary": ..., "graphs": [records]}`` as JSON to ``path`` and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"summary": self.summary(), "graphs": [asdict(r) for r in self.records]}
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return path

    def table(self) -> str:
        """The :meth:`summary` as a plain-text table, then one line per graph not exact at the requested Ω."""
        summary = self.summary()
        n = len(self.records)
        lines = [
            f"device {self.device_name}, Ω = {self.rabi_frequency:.4g} rad/µs, "
            f"blockade radius {self.blockade_radius:.3f} µm",
            f"{'status':<12}{'graphs':>8}{'share':>9}",
        ]
        for key in ("exact", "approximate", "failed"):
            count = cast(int, summary[key])
            lines.append(f"{key:<12}{count:>8}{count / max(n, 1):>9.1%}")
        lines.append(f"{'total':<12}{n:>8}")
        lines.append(
            f"time per graph: mean {summary['mean_seconds']:.3f} s, max {summary['max_seconds']:.3f} s"
        )
        if summary["adjusted_rabi_frequency"]:
            lines.append(f"embedded at an adjusted Ω: {summary['adjusted_rabi_frequency']} graph(s)")
        for r in self.records:
            if r.status != "exact":
                lines.append(f"  graph {r.index} ({r.n_nodes} nodes) {r.status}: {r.reason}")
            elif r.rabi_frequency != self.rabi_frequency:
                lines.append(
                    f"  graph {r.index} ({r.n_nodes} nodes) exact at Ω = {r.rabi_frequency:.4g} rad/µs"
                )
        return "\n".join(lines)


def _record(index: int, graph: nx.Graph, outcome: Embedding | Exception, seconds: float) -> EmbeddingRecord:
    n = graph.number_of_nodes() if isinstance(graph, nx.Graph) else 0
    m = graph.number_of_edges() if isinstance(graph, nx.Graph) else 0
    pairs = n * (n - 1) // 2 - m
    if isinstance(outcome, Exception):
        return EmbeddingRecord(
            index,
            n,
            m,
            "failed",
            str(outcome),
            type(outcome).__name__,
            None,
            pairs,
            None,
            None,
            None,
            None,
            seconds,
            None,
        )
    q = outcome.quality
    reason = None if q.is_exact else f"{q.n_violations} pair(s) violate the unit-disk condition"
    return EmbeddingRecord(
        index,
        n,
        m,
        "exact" if q.is_exact else "approximate",
        reason,
        None,
        q.edges_inside,
        pairs,
        q.non_edges_outside,
        q.edge_margin,
        q.non_edge_margin,
        q.n_violations,
        seconds,
        outcome.rabi_frequency,
    )


def embed_dataset(
    graphs: Iterable[nx.Graph],
    device: AnyDevice = AnalogDevice,
    *,
    rabi_frequency: float = DEFAULT_RABI_FREQUENCY,
    seed: int = 0,
    progress: bool = True,
    margin: float = DEFAULT_MARGIN,
    adjust_rabi_frequency: bool = False,
) -> EmbeddingReport:
    """Embed every graph with :func:`embed` and collect the outcomes.

    Graphs that are invalid or provably not embeddable are recorded as
    ``"failed"`` with the error message; approximate embeddings are recorded
    (their :class:`EmbeddingWarning` is not re-issued). Each graph uses the
    same ``seed``, so its result does not depend on its neighbours.

    Args:
        graphs: networkx graphs, e.g. ``qgnn.data.load_dataset("MUTAG", max_nodes=16)``.
        device: the Pulser device.
        rabi_frequency: Ω in rad/µs.
        seed: random seed passed to :func:`embed`.
        progress: show a tqdm progress bar.
        margin: safety margin passed to :func:`embed`.
        adjust_rabi_frequency: passed to :func:`embed` (devices with calibrated layouts only).

    Returns:
        The :class:`EmbeddingReport`.

    Raises:
        ScheduleError: ``rabi_frequency`` is invalid for ``device`` (checked once, up front).
    """
    radius = blockade_radius(device, rabi_frequency)
    records: list[EmbeddingRecord] = []
    embeddings: list[Embedding | None] = []
    items = list(graphs)
    for position, graph in enumerate(tqdm(items, desc="embedding", unit="graph", disable=not progress)):
        own = graph.graph.get("index") if isinstance(graph, nx.Graph) else None
        index = own if isinstance(own, int) else position
        start = time.perf_counter()
        outcome: Embedding | Exception
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", EmbeddingWarning)
                outcome = embed(
                    graph,
                    device,
                    rabi_frequency=rabi_frequency,
                    seed=seed,
                    index=index,
                    margin=margin,
                    adjust_rabi_frequency=adjust_rabi_frequency,
                )
        except (InvalidGraphError, NotEmbeddableError) as exc:
            outcome = exc
        records.append(_record(index, graph, outcome, time.perf_counter() - start))
        embeddings.append(None if isinstance(outcome, Exception) else outcome)
    return EmbeddingReport(tuple(records), tuple(embeddings), device.name, float(rabi_frequency), radius)

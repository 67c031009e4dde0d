"""Share of molecule graphs embedded as exact unit-disk registers, qgnn vs the QEK reference.

For PTC_FM and MUTAG graphs with at most 20 nodes (default), on Pulser's
AnalogDevice at Ω = 2π rad/µs, this prints one table and writes
``benchmarks/results/embedding_quality.json``. Columns:

* ``QEK check``: Pasqal's quantum-evolution-kernel acceptance test as coded
  (``qek.data.graphs.MoleculeGraph`` + ``BaseGraph.is_embeddable``): RDKit 2D
  coordinates rescaled so the closest atom pair is ``min_atom_distance``
  (5 µm) apart, the graph connected, within the radial limit, and a disk graph
  at radius ``min_atom_distance + 0.01 µm`` (QEK's test radius, not the
  blockade radius).
* ``RDKit @ r``: the same coordinates tested at the true blockade radius
  ``r = device.rydberg_blockade_radius(Ω)``: every edge ``< r``, every
  non-edge ``> r``. This is what the QEK sequence (Ω = 2π rad/µs) actually
  realises, so it is the reference to beat.
* ``RDKit best``: the best uniform rescaling of the RDKit coordinates (any
  scale keeping atoms ≥ 5 µm apart; radial limit ignored), an upper bound for
  rescaling alone.
* ``qgnn exact``: :func:`qgnn.embedding.embed_dataset` (optimised, layout-mapped,
  device-validated registers), with the time per graph.

A second table embeds the same graphs on other devices (Ω = 2π rad/µs
requested): ``WeightedAnalogDevice`` (C6 of n = 75, new 150-trap layouts), and
a QPU that accepts only a pre-calibrated 61-trap triangular lattice at 5 µm
(``tests/fixtures/pasqal_calibrated_device_specs.json``), at the requested Ω
and with Ω adjusted within the channel's limits (``adjusted``: graphs that
embed only at another Ω; ``undecided``: the trap search ran out of budget).

The molecule is rebuilt from qgnn.data's ``element`` node and ``bond`` edge
attributes, as QEK does from PTC_FM's label codes. Needs rdkit (extra ``chem``).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/embedding_quality.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pulser
from pulser.devices import AnalogDevice, Device, WeightedAnalogDevice

from qgnn.data import load_dataset
from qgnn.embedding import DEFAULT_RABI_FREQUENCY, AnyDevice, EmbeddingReport, embed, embed_dataset
from qgnn.errors import require_extra

RESULTS = Path(__file__).resolve().parent / "results" / "embedding_quality.json"
CALIBRATED_SPECS = (
    Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pasqal_calibrated_device_specs.json"
)
QEK_EPSILON_RADIUS_UM = 0.01  # qek.data.graphs.EPSILON_RADIUS_UM


def qek_coordinates(graph: nx.Graph) -> np.ndarray:
    """RDKit 2D coordinates (Å) built the way QEK's ``graph_to_mol`` + ``Compute2DCoords`` do."""
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDepictor  # AllChem.Compute2DCoords, which QEK calls, is this function

    bond_types = {
        "single": Chem.BondType.SINGLE,
        "double": Chem.BondType.DOUBLE,
        "triple": Chem.BondType.TRIPLE,
        "aromatic": Chem.BondType.AROMATIC,
    }
    mol = Chem.RWMol(Chem.MolFromSmiles(""))
    atom = {u: mol.AddAtom(Chem.Atom(graph.nodes[u]["element"])) for u in graph.nodes}
    for u, v, bond in graph.edges(data="bond"):
        mol.AddBond(atom[u], atom[v], bond_types[bond])
    mol = mol.GetMol()
    with rdBase.BlockLogs():
        rdDepictor.Compute2DCoords(mol, useRingTemplates=True)
    return np.asarray(mol.GetConformer().GetPositions(), dtype=float)[:, :2]


def reference_checks(graph: nx.Graph, radius: float) -> dict[str, bool]:
    """Apply the three RDKit-coordinate criteria of the module docstring to one graph."""
    nodes = list(graph.nodes)
    pos = qek_coordinates(graph)
    iu, ju = np.triu_indices(len(nodes), k=1)
    dist = np.linalg.norm(pos[iu] - pos[ju], axis=1)
    adjacency = nx.to_numpy_array(graph, nodelist=nodes, dtype=bool, weight=None)
    is_edge = adjacency[iu, ju]
    d_min = float(AnalogDevice.min_atom_distance)
    scale = d_min / dist.min()
    pos, dist = pos * scale, dist * scale
    within = bool(np.max(np.linalg.norm(pos - pos.mean(axis=0), axis=1)) <= AnalogDevice.max_radial_distance)
    qek_radius = d_min + QEK_EPSILON_RADIUS_UM
    qek = (
        nx.is_connected(graph)
        and within
        and bool(np.all(dist[is_edge] <= qek_radius) and np.all(dist[~is_edge] > qek_radius))
    )
    at_r = within and bool(np.all(dist[is_edge] < radius) and np.all(dist[~is_edge] > radius))
    longest_edge = float(dist[is_edge].max()) if is_edge.any() else 0.0
    shortest_non_edge = float(dist[~is_edge].min()) if (~is_edge).any() else np.inf
    # a scale s ≥ 1 keeps atoms ≥ d_min apart; exact iff s·longest_edge < r < s·shortest_non_edge
    low = max(1.0, radius / shortest_non_edge)
    high = radius / longest_edge if longest_edge > 0 else np.inf
    return {"qek_check": qek, "rdkit_at_r": at_r, "rdkit_best_scale": bool(low < high)}


@dataclass(frozen=True)
class Row:
    """Counts for one dataset (graph counts unless stated)."""

    dataset: str
    max_nodes: int
    graphs: int
    qek_check: int
    rdkit_at_r: int
    rdkit_best_scale: int
    qgnn_exact: int
    qgnn_approximate: int
    qgnn_failed: int
    seconds_mean: float
    seconds_median: float
    seconds_max: float
    reference_exact_but_qgnn_not: list[int]
    qgnn_not_exact: list[dict[str, object]]


@dataclass(frozen=True)
class DeviceRow:
    """qgnn's embedding outcomes for one dataset on one device (graph counts unless stated)."""

    dataset: str
    device: str
    graphs: int
    exact: int
    approximate: int
    failed: int
    adjusted: int
    undecided: int
    seconds_mean: float
    seconds_max: float


def device_row(dataset: str, label: str, report: EmbeddingReport) -> DeviceRow:
    """Summarise one :func:`embed_dataset` report as a :class:`DeviceRow`."""
    records = report.records
    seconds = [r.seconds for r in records]
    status = Counter(r.status for r in records)
    return DeviceRow(
        dataset=dataset,
        device=label,
        graphs=len(records),
        exact=status["exact"],
        approximate=status["approximate"],
        failed=status["failed"],
        adjusted=sum(r.rabi_frequency not in (None, report.rabi_frequency) for r in records),
        undecided=sum("search stopped" in (r.reason or "") for r in records),
        seconds_mean=statistics.fmean(seconds),
        seconds_max=max(seconds),
    )


def run_dataset(
    name: str, max_nodes: int, radius: float, devices: dict[str, tuple[AnyDevice, bool]]
) -> tuple[Row, list[DeviceRow]]:
    """Embed one dataset with qgnn on AnalogDevice, check the references, and embed on ``devices``.

    Args:
        name: dataset name.
        max_nodes: largest graph kept.
        radius: AnalogDevice's blockade radius at Ω = 2π rad/µs (µm).
        devices: label → (device, adjust Ω on calibrated traps).

    Returns:
        The reference :class:`Row` and one :class:`DeviceRow` per device (AnalogDevice first).
    """
    graphs = list(load_dataset(name, max_nodes=max_nodes))
    refs = [reference_checks(g, radius) for g in graphs]
    report = embed_dataset(graphs, AnalogDevice, rabi_frequency=DEFAULT_RABI_FREQUENCY, progress=False)
    device_rows = [device_row(name, AnalogDevice.name, report)]
    for label, (device, adjust) in devices.items():
        other = embed_dataset(graphs, device, progress=False, adjust_rabi_frequency=adjust)
        device_rows.append(device_row(name, label, other))
    records = report.records
    seconds = [r.seconds for r in records]
    row = Row(
        dataset=name,
        max_nodes=max_nodes,
        graphs=len(graphs),
        qek_check=sum(r["qek_check"] for r in refs),
        rdkit_at_r=sum(r["rdkit_at_r"] for r in refs),
        rdkit_best_scale=sum(r["rdkit_best_scale"] for r in refs),
        qgnn_exact=sum(r.status == "exact" for r in records),
        qgnn_approximate=sum(r.status == "approximate" for r in records),
        qgnn_failed=sum(r.status == "failed" for r in records),
        seconds_mean=statistics.fmean(seconds),
        seconds_median=statistics.median(seconds),
        seconds_max=max(seconds),
        reference_exact_but_qgnn_not=[
            r.index for r, ref in zip(records, refs, strict=True) if ref["rdkit_at_r"] and r.status != "exact"
        ],
        qgnn_not_exact=[
            {"index": r.index, "n_nodes": r.n_nodes, "status": r.status, "reason": r.reason}
            for r in records
            if r.status != "exact"
        ],
    )
    return row, device_rows


def _share(count: int, total: int) -> str:
    """``count`` and its share of ``total``, e.g. ``12 (40%)``."""
    return f"{count} ({count / total:.0%})"


def _print_table(header: str, lines: Iterable[str]) -> None:
    """The header, a rule as wide as it, then one line per row."""
    print(header)
    print("-" * len(header))
    for line in lines:
        print(line)


def main() -> None:
    """Run the benchmark, print the table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["PTC_FM", "MUTAG"])
    parser.add_argument("--max-nodes", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--calibrated-specs", type=Path, default=CALIBRATED_SPECS)
    args = parser.parse_args()
    require_extra("rdkit", "chem")

    qpu = Device.from_abstract_repr(json.loads(args.calibrated_specs.read_text(encoding="utf-8"))["FRESNEL"])
    (layout,) = qpu.pre_calibrated_layouts
    devices: dict[str, tuple[AnyDevice, bool]] = {
        WeightedAnalogDevice.name: (WeightedAnalogDevice, False),
        f"{qpu.name} calibrated, Ω = 2π": (qpu, False),
        f"{qpu.name} calibrated, Ω adjusted": (qpu, True),
    }
    radius = AnalogDevice.rydberg_blockade_radius(DEFAULT_RABI_FREQUENCY)
    embed(nx.cycle_graph(6))  # warm up imports so the first graph's time is not inflated
    start = time.perf_counter()
    results = [run_dataset(name, args.max_nodes, radius, devices) for name in args.datasets]
    total = time.perf_counter() - start
    rows = [row for row, _ in results]
    device_rows = [d for _, ds in results for d in ds]

    print(
        f"AnalogDevice, Ω = 2π rad/µs: blockade radius {radius:.3f} µm, min atom distance "
        f"{AnalogDevice.min_atom_distance} µm (ratio {radius / AnalogDevice.min_atom_distance:.3f}), "
        f"max radial distance {AnalogDevice.max_radial_distance} µm"
    )
    _print_table(
        f"{'dataset':<9}{'graphs':>7}{'QEK check':>11}{'RDKit @ r':>11}{'RDKit best':>12}"
        f"{'qgnn exact':>12}{'approx':>8}{'failed':>8}{'s/graph mean':>14}{'median':>9}{'max':>8}",
        (
            f"{row.dataset:<9}{row.graphs:>7}{_share(row.qek_check, row.graphs):>11}"
            f"{_share(row.rdkit_at_r, row.graphs):>11}{_share(row.rdkit_best_scale, row.graphs):>12}"
            f"{_share(row.qgnn_exact, row.graphs):>12}{row.qgnn_approximate:>8}{row.qgnn_failed:>8}"
            f"{row.seconds_mean:>14.4f}{row.seconds_median:>9.4f}{row.seconds_max:>8.3f}"
            for row in rows
        ),
    )
    for row in rows:
        for item in row.qgnn_not_exact:
            print(
                f"  {row.dataset} graph {item['index']} ({item['n_nodes']} nodes) not exact: {item['reason']}"
            )

    print(
        f"\nqgnn on other devices, Ω = 2π rad/µs requested (graphs ≤ {args.max_nodes} nodes); "
        f"'{qpu.name} calibrated': only the pre-calibrated {layout}"
    )
    _print_table(
        f"{'dataset':<9}{'device':<32}{'graphs':>7}{'exact':>12}{'approx':>8}{'failed':>8}"
        f"{'adjusted':>10}{'undecided':>11}{'s/graph':>9}{'max s':>8}",
        (
            f"{d.dataset:<9}{d.device:<32}{d.graphs:>7}{_share(d.exact, d.graphs):>12}"
            f"{d.approximate:>8}{d.failed:>8}{d.adjusted:>10}{d.undecided:>11}{d.seconds_mean:>9.4f}"
            f"{d.seconds_max:>8.3f}"
            for d in device_rows
        ),
    )

    payload = {
        "device": AnalogDevice.name,
        "rabi_frequency_rad_per_us": DEFAULT_RABI_FREQUENCY,
        "blockade_radius_um": radius,
        "min_atom_distance_um": float(AnalogDevice.min_atom_distance),
        "max_radial_distance_um": float(AnalogDevice.max_radial_distance or 0),
        "pulser_version": pulser.__version__,
        "python": platform.python_version(),
        "total_seconds": total,
        "rows": [asdict(row) for row in rows],
        "devices": [asdict(d) for d in device_rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Starting layouts for the unit-disk optimiser.

Each layout is an ``(n, 2)`` array in arbitrary units, rows in node order;
the optimiser rescales it. Molecules (every node carries an ``element``
attribute, as qgnn.data sets) also get RDKit's 2D depiction when rdkit is
installed (extra ``chem``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Hashable, Iterator, Sequence
from functools import cache

import networkx as nx
import numpy as np

_BOND_TYPES = ("single", "double", "triple", "aromatic")


@cache
def _element_symbols() -> frozenset[str]:
    from rdkit import Chem

    table = Chem.GetPeriodicTable()
    return frozenset(table.GetElementSymbol(z) for z in range(1, 119))


def rdkit_coordinates(graph: nx.Graph, node_ids: Sequence[Hashable]) -> np.ndarray | None:
    """RDKit 2D depiction coordinates of a molecule graph (Å), or ``None``.

    Atoms come from node attribute ``element`` (e.g. ``"C"``); bonds from the
    edge attribute ``bond`` (``"single"``, ``"double"``, ``"triple"`` or
    ``"aromatic"``; single when absent). Hydrogens are implicit and unused.

    Args:
        graph: the molecule graph.
        node_ids: the nodes in the order of the returned rows.

    Returns:
        ``(n, 2)`` coordinates, or ``None`` when rdkit is not installed, a node
        has no known element, or RDKit cannot depict the molecule.
    """
    if importlib.util.find_spec("rdkit") is None:
        return None
    from rdkit import Chem, rdBase
    from rdkit.Chem import rdDepictor

    elements = [graph.nodes[u].get("element") for u in node_ids]
    known = _element_symbols()
    if not all(isinstance(e, str) and e in known for e in elements):
        return None
    position = {u: k for k, u in enumerate(node_ids)}
    mol = Chem.RWMol()
    for element in elements:
        mol.AddAtom(Chem.Atom(str(element)))
    for u, v, bond in graph.edges(data="bond"):
        name = str(bond).upper() if str(bond).lower() in _BOND_TYPES else "SINGLE"
        mol.AddBond(position[u], position[v], getattr(Chem.BondType, name))
    with rdBase.BlockLogs():  # valence warnings of the hydrogen-less molecule are irrelevant here
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)
        rdDepictor.Compute2DCoords(mol, useRingTemplates=True)
    coords = np.asarray(mol.GetConformer().GetPositions(), dtype=float)[:, :2]
    return coords if np.all(np.isfinite(coords)) else None


def _as_array(layout: dict[Hashable, np.ndarray], node_ids: Sequence[Hashable]) -> np.ndarray:
    return np.array([np.asarray(layout[u], dtype=float)[:2] for u in node_ids], dtype=float)


def initial_layouts(
    graph: nx.Graph, node_ids: Sequence[Hashable], rng: np.random.Generator, n_spring: int = 4
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, positions)`` starting layouts, the most promising first.

    Order: RDKit 2D coordinates (molecules only), Kamada–Kawai, ``n_spring``
    spring layouts with seeds drawn from ``rng``, spectral. Layouts are made
    lazily so the optimiser can stop early.

    Args:
        graph: the graph (validated, non-empty).
        node_ids: the nodes in row order.
        rng: the random generator that fixes the spring seeds (determinism).
        n_spring: number of spring layouts.
    """
    n = len(node_ids)
    if n == 1:
        yield "single", np.zeros((1, 2))
        return
    spring_seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=n_spring)]
    coords = rdkit_coordinates(graph, node_ids)
    if coords is not None:
        yield "rdkit", coords
    yield "kamada-kawai", _as_array(nx.kamada_kawai_layout(graph), node_ids)
    for seed in spring_seeds:
        yield f"spring-{seed}", _as_array(nx.spring_layout(graph, seed=seed), node_ids)
    if n > 2:
        yield "spectral", _as_array(nx.spectral_layout(graph), node_ids)

"""SMILES strings → molecular graphs of heavy atoms (RDKit; extra ``qgnn[chem]``).

The one SMILES→graph converter of qgnn: :func:`from_smiles` for your own
molecules and :func:`~qgnn.data.esol.read_esol` for the shipped ESOL table both
go through :func:`parse_smiles`, so a molecule gets the same graph either way.
Hydrogens are dropped; node code = atomic number (``label``) with its symbol
(``element``); edge code = bond type (``0`` aromatic, ``1`` single, ``2``
double, ``3`` triple, the MUTAG convention, so non-aromatic codes equal the
bond order) with its name (``bond``).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from qgnn.data.validation import as_index
from qgnn.errors import InvalidGraphError, InvalidInputError, graph_label, require_extra

BOND_NAMES: dict[int, str] = {0: "aromatic", 1: "single", 2: "double", 3: "triple"}
NUM_ELEMENTS = 119
"""One-hot width of atomic numbers (0–118) recorded on :func:`from_smiles` graphs."""


class UnreadableSmiles(ValueError):
    """RDKit cannot turn a SMILES string into a heavy-atom graph; the message says why."""


@dataclass(frozen=True)
class Molecule:
    """The heavy-atom graph of one SMILES string.

    Args:
        smiles: the string, stripped of surrounding blanks.
        atoms: atomic number of each heavy atom (node ``i`` = ``atoms[i]``).
        symbols: element symbol of each heavy atom.
        edges: bonds between heavy atoms, as node pairs.
        bonds: bond code of each edge (keys of :data:`BOND_NAMES`).
    """

    smiles: str
    atoms: tuple[int, ...]
    symbols: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    bonds: tuple[int, ...]


def parse_smiles(smiles: str) -> Molecule:
    """Parse ``smiles`` with RDKit into its heavy-atom graph.

    Raises:
        MissingExtraError: RDKit is not installed.
        UnreadableSmiles: RDKit cannot parse it, it has no heavy atom, or a bond
            type has no code (callers add which row or graph it was).
    """
    require_extra("rdkit", "chem")
    from rdkit import Chem, rdBase

    codes = {
        Chem.BondType.AROMATIC: 0,
        Chem.BondType.SINGLE: 1,
        Chem.BondType.DOUBLE: 2,
        Chem.BondType.TRIPLE: 3,
    }
    text = smiles.strip()
    if not text:
        raise UnreadableSmiles("the SMILES string is empty")
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(text)
    if mol is None:
        raise UnreadableSmiles(f"RDKit cannot parse SMILES {text!r}")
    heavy = {a.GetIdx(): k for k, a in enumerate(a for a in mol.GetAtoms() if a.GetAtomicNum() != 1)}
    if not heavy:
        raise UnreadableSmiles(f"SMILES {text!r} has no heavy atom")
    atoms = [mol.GetAtomWithIdx(i) for i in heavy]
    edges: list[tuple[int, int]] = []
    bonds: list[int] = []
    for bond in mol.GetBonds():
        u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if u not in heavy or v not in heavy:
            continue
        code = codes.get(bond.GetBondType())
        if code is None:
            raise UnreadableSmiles(f"unsupported bond type {bond.GetBondType()} in SMILES {text!r}")
        edges.append((heavy[u], heavy[v]))
        bonds.append(code)
    return Molecule(
        smiles=text,
        atoms=tuple(a.GetAtomicNum() for a in atoms),
        symbols=tuple(a.GetSymbol() for a in atoms),
        edges=tuple(edges),
        bonds=tuple(bonds),
    )


def from_smiles(smiles: str, *, index: int | None = None) -> nx.Graph:
    """The heavy-atom graph of a molecule written in SMILES, labelled as ESOL's graphs are.

    Nodes ``0..n-1`` in SMILES order carry ``label`` (atomic number) and
    ``element`` (symbol); edges carry ``label`` (bond code) and ``bond``
    (``"aromatic"``, ``"single"``, ``"double"``, ``"triple"``).
    ``graph.graph`` holds ``smiles``, ``index`` (when given) and the one-hot
    widths ``num_node_labels`` = 119 (every atomic number) and
    ``num_edge_labels`` = 4, so several molecules convert to one width with
    :func:`~qgnn.data.to_pyg` (pass ESOL's widths to feed a model trained on ESOL).

    Args:
        smiles: the molecule, e.g. ``"c1ccccc1"`` (benzene).
        index: the graph's dataset index (``graph.graph["index"]``), also named
            in error messages; default none.

    Raises:
        MissingExtraError: RDKit is not installed (``pip install 'qgnn[chem]'``).
        InvalidInputError: ``smiles`` is not a string or ``index`` not an integer.
        InvalidGraphError: RDKit cannot parse ``smiles``, or it has no heavy atom.

    Example:
        >>> ethanol = from_smiles("CCO")  # doctest: +SKIP
        >>> [d["element"] for _, d in ethanol.nodes(data=True)], ethanol.edges[1, 2]["bond"]  # doctest: +SKIP
        (['C', 'C', 'O'], 'single')
    """
    if not isinstance(smiles, str):
        raise InvalidInputError(f"a SMILES string is expected, got {type(smiles).__name__}")
    if index is not None and as_index(index) is None:
        raise InvalidInputError(f"index must be an integer or None, got {index!r}")
    try:
        molecule = parse_smiles(smiles)
    except UnreadableSmiles as exc:
        raise InvalidGraphError(f"{graph_label(as_index(index))}: {exc}; fix the string") from None
    graph = nx.Graph(smiles=molecule.smiles, num_node_labels=NUM_ELEMENTS, num_edge_labels=len(BOND_NAMES))
    if index is not None:
        graph.graph["index"] = int(index)
    graph.add_nodes_from(
        (k, {"label": z, "element": symbol})
        for k, (z, symbol) in enumerate(zip(molecule.atoms, molecule.symbols, strict=True))
    )
    graph.add_edges_from(
        (u, v, {"label": code, "bond": BOND_NAMES[code]})
        for (u, v), code in zip(molecule.edges, molecule.bonds, strict=True)
    )
    return graph

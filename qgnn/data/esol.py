"""Reader for ESOL (Delaney) solubility data: SMILES strings → molecular graphs.

Needs RDKit (``pip install 'qgnn[chem]'``). Each molecule becomes a graph of
its heavy atoms through :func:`qgnn.data.smiles.parse_smiles` (the converter
:func:`~qgnn.data.from_smiles` uses too): node code = atomic number, edge code
= bond type (``0`` aromatic, ``1`` single, ``2`` double, ``3`` triple).
"""

from __future__ import annotations

import csv
import io

import numpy as np

from qgnn.data.packed import PackedGraphs
from qgnn.data.smiles import BOND_NAMES, UnreadableSmiles, parse_smiles
from qgnn.errors import DatasetError, require_extra

TARGET_COLUMN = "measured log solubility in mols per litre"
SMILES_COLUMN = "smiles"
ID_COLUMN = "Compound ID"


def read_esol(data: bytes, file: str) -> PackedGraphs:
    """Parse the ESOL CSV (``delaney-processed.csv``) into :class:`PackedGraphs`.

    Args:
        data: the verified bytes of the CSV.
        file: its name, for error messages.

    Raises:
        MissingExtraError: RDKit is not installed.
        DatasetError: a column is missing, a target is not a number, or a SMILES
            string does not parse (the message names the row).
    """
    require_extra("rdkit", "chem")
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    missing = {TARGET_COLUMN, SMILES_COLUMN, ID_COLUMN} - set(reader.fieldnames or ())
    if missing:
        raise DatasetError(f"{file} lacks column(s) {sorted(missing)}")
    node_counts: list[int] = [0]
    edge_counts: list[int] = [0]
    atoms: list[int] = []
    edges: list[tuple[int, int]] = []
    bonds: list[int] = []
    targets: list[float] = []
    smiles_list: list[str] = []
    compounds: list[str] = []
    symbols: dict[int, str] = {}
    for row_number, row in enumerate(reader):
        where = f"{file} row {row_number} (line {row_number + 2})"
        try:
            targets.append(float(row[TARGET_COLUMN]))
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: target {row[TARGET_COLUMN]!r} is not a number") from exc
        try:
            molecule = parse_smiles(row[SMILES_COLUMN] or "")
        except UnreadableSmiles as exc:
            raise DatasetError(f"{where}: {exc}; fix or remove that row") from None
        atoms.extend(molecule.atoms)
        symbols.update(zip(molecule.atoms, molecule.symbols, strict=True))
        edges.extend(molecule.edges)
        bonds.extend(molecule.bonds)
        node_counts.append(len(molecule.atoms))
        edge_counts.append(len(molecule.edges))
        smiles_list.append(molecule.smiles)
        compounds.append(row[ID_COLUMN])
    if not targets:
        raise DatasetError(f"{file} has no data rows")
    return PackedGraphs(
        name="ESOL",
        task="regression",
        node_ptr=np.cumsum(node_counts, dtype=np.int64),
        edge_ptr=np.cumsum(edge_counts, dtype=np.int64),
        edges=np.array(edges, dtype=np.int64).reshape(-1, 2),
        y_original=np.array(targets, dtype=np.float64),
        node_label=np.array(atoms, dtype=np.int64),
        edge_label=np.array(bonds, dtype=np.int64),
        node_label_names=dict(sorted(symbols.items())),
        edge_label_names=dict(BOND_NAMES),
        graph_extras={"smiles": tuple(smiles_list), "compound": tuple(compounds)},
    )

"""Reader for ESOL (Delaney) solubility data: SMILES strings → molecular graphs.

Needs RDKit (``pip install 'qgnn[chem]'``). Each molecule becomes a graph of
its heavy atoms (hydrogens dropped): node code = atomic number, edge code =
bond type (``0`` aromatic, ``1`` single, ``2`` double, ``3`` triple, the
MUTAG convention, so non-aromatic codes equal the bond order).
"""

from __future__ import annotations

import csv
import io

import numpy as np

from qgnn.data.packed import PackedGraphs
from qgnn.errors import DatasetError, require_extra

TARGET_COLUMN = "measured log solubility in mols per litre"
SMILES_COLUMN = "smiles"
ID_COLUMN = "Compound ID"
BOND_NAMES: dict[int, str] = {0: "aromatic", 1: "single", 2: "double", 3: "triple"}


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
    from rdkit import Chem, rdBase

    codes = {
        Chem.BondType.AROMATIC: 0,
        Chem.BondType.SINGLE: 1,
        Chem.BondType.DOUBLE: 2,
        Chem.BondType.TRIPLE: 3,
    }
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
        smiles = (row[SMILES_COLUMN] or "").strip()
        try:
            targets.append(float(row[TARGET_COLUMN]))
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: target {row[TARGET_COLUMN]!r} is not a number") from exc
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(smiles) if smiles else None
        if mol is None:
            raise DatasetError(f"{where}: RDKit cannot parse SMILES {smiles!r}; fix or remove that row")
        heavy: dict[int, int] = {}
        for atom in mol.GetAtoms():
            if atom.GetAtomicNum() != 1:
                heavy[atom.GetIdx()] = len(heavy)
                atoms.append(atom.GetAtomicNum())
                symbols[atom.GetAtomicNum()] = atom.GetSymbol()
        if not heavy:
            raise DatasetError(f"{where}: SMILES {smiles!r} has no heavy atom; fix or remove that row")
        count = 0
        for bond in mol.GetBonds():
            u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            if u not in heavy or v not in heavy:
                continue
            code = codes.get(bond.GetBondType())
            if code is None:
                raise DatasetError(f"{where}: unsupported bond type {bond.GetBondType()} in {smiles!r}")
            edges.append((heavy[u], heavy[v]))
            bonds.append(code)
            count += 1
        node_counts.append(len(heavy))
        edge_counts.append(count)
        smiles_list.append(smiles)
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

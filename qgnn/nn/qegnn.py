"""An end-to-end quantum GNN: the trainable Rydberg layer feeding a GIN head (``qegnn``).

:class:`QuantumEvolutionGNN` chains a :class:`RydbergEvolution` into the GIN
head of :class:`~qgnn.nn.QuantumGIN` (⟨n_i⟩ per node, the connected
correlations' row statistics as positional encoding, C_ij per edge, the
excitation distribution in the readout); pulse and head are trained together
(:func:`qegnn_folds`), or the head alone on the initial pulse
(``train_pulse=False``, ``qegnn-fixed``, the "untrained pulse" baseline with
the same head). Every fold's learned pulse is written to one JSON file and
overlaid in one plot (:func:`qgnn.nn.alignment.save_pulses`).

The kernel-alignment model ``qek-trained`` lives in :mod:`qgnn.nn.alignment`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from qgnn.errors import InvalidInputError
from qgnn.nn.alignment import fresh_layer, save_pulses
from qgnn.nn.models import QuantumGIN
from qgnn.nn.rydberg import AtomGraph, RydbergEvolution, RydbergOutput
from qgnn.nn.training import (
    FoldOutcome,
    fold_outcome,
    fold_seed,
    inner_split,
    pyg_graphs,
    run_folds,
    target_scale,
    task_loss,
    train_early_stopping,
)
from qgnn.nn.transforms import fill_edgeless

if TYPE_CHECKING:
    from qgnn.data import GraphDataset
    from qgnn.evaluation import Fold, ModelResult

#: Per-node statistics of the connected correlations in ``pe_q`` (those of :func:`correlation_encodings`).
ROW_STATISTICS = 5


def row_statistics(corr: Tensor) -> Tensor:
    """Per-node [Σ_{j≠i} C_ij, Σ_{j≠i} |C_ij|, max_{j≠i} C_ij, min_{j≠i} C_ij, C_ii], shape ``(n, 5)``.

    The differentiable twin of the first five columns of
    :func:`qgnn.nn.correlation_encodings` (zeros off the diagonal for one node).
    """
    n = corr.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    diag = corr.diagonal()
    if n == 1:
        return torch.cat([torch.zeros(1, 4, dtype=corr.dtype), diag[:, None]], dim=1)
    masked = torch.where(off, corr, torch.zeros_like(corr))
    high = torch.where(off, corr, torch.full_like(corr, -math.inf)).amax(dim=1)
    low = torch.where(off, corr, torch.full_like(corr, math.inf)).amin(dim=1)
    return torch.stack([masked.sum(1), masked.abs().sum(1), high, low, diag], dim=1)


class QuantumEvolutionGNN(nn.Module):
    r"""A :class:`RydbergEvolution` layer feeding the GIN head of :class:`~qgnn.nn.QuantumGIN`.

    For each graph the layer measures ⟨n_i⟩, C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩
    and P(k) under the trainable pulse; the head reads ``x_q`` = ⟨n_i⟩,
    ``pe_q`` = :func:`row_statistics` of C, ``edge_attr_q`` = C_ij on each
    edge and ``hist_q`` = P(k) zero-padded to ``hist_length``. Gradients flow
    from the loss through the head into the pulse and the label weights.

    Args:
        layer: the quantum layer.
        in_channels: width of ``data.x``.
        out_channels: classes (classification) or 1 (regression).
        hist_length: length L of the excitation histogram (≥ 1 + largest graph).
        edge_dim: width of ``data.edge_attr`` to use, or ``None``.
        hidden: hidden width (default 64).
        layers: GIN layers (default 3).
        dropout: dropout before the last linear layer (default 0).
        task: ``"classification"`` or ``"regression"``.
    """

    def __init__(
        self,
        layer: RydbergEvolution,
        in_channels: int,
        out_channels: int,
        *,
        hist_length: int,
        edge_dim: int | None = None,
        hidden: int = 64,
        layers: int = 3,
        dropout: float = 0.0,
        task: Literal["classification", "regression"] = "classification",
    ) -> None:
        super().__init__()
        self.layer = layer
        self.hist_length = hist_length
        self.head = QuantumGIN(
            in_channels,
            1,
            ROW_STATISTICS,
            hist_length,
            out_channels,
            edge_dim=edge_dim,
            q_edge_dim=1,
            hidden=hidden,
            layers=layers,
            dropout=dropout,
            task=task,
        )

    def featurise(self, datas: Sequence[Data], atoms: Sequence[AtomGraph]) -> list[Data]:
        """Copies of ``datas`` with the layer's ``x_q``, ``pe_q``, ``edge_attr_q`` and ``hist_q``.

        ``datas[g]`` lists the nodes of ``atoms[g]``'s graph in graph order, and
        carries ``qubit`` (int64, the qubit of each node; see :func:`attach_qubits`).
        """
        out: RydbergOutput = self.layer(atoms)
        hist = out.excitation_matrix(self.hist_length).float()
        featurised = []
        for g, data in enumerate(datas):
            qubit = data.qubit
            corr = out.connected(g)[qubit][:, qubit]
            copy_ = copy.copy(data)
            copy_.x_q = out.occupations[g][qubit][:, None].float()
            copy_.pe_q = row_statistics(corr).float()
            copy_.edge_attr_q = corr[data.edge_index[0], data.edge_index[1]][:, None].float()
            copy_.hist_q = hist[g : g + 1]
            featurised.append(copy_)
        return featurised

    def forward(self, datas: Sequence[Data], atoms: Sequence[AtomGraph]) -> Tensor:
        """Logits ``(B, C)`` or regression values ``(B,)``."""
        return self.head(Batch.from_data_list(self.featurise(datas, atoms)))  # type: ignore[no-any-return]


def attach_qubits(data: Data, atoms: AtomGraph, nodes: Sequence[Hashable]) -> Data:
    """A copy of ``data`` with ``qubit[i]`` = the qubit of node ``nodes[i]`` (the graph's node order)."""
    where = {node: k for k, node in enumerate(atoms.node_ids)}
    missing = [v for v in nodes if v not in where]
    if missing or len(nodes) != data.num_nodes:
        raise InvalidInputError(f"{atoms.where}: the Data's nodes do not match the embedding's atoms")
    copy_ = copy.copy(data)
    copy_.qubit = torch.tensor([where[v] for v in nodes], dtype=torch.long)
    return copy_


def fit_evaluate_qegnn(
    model: QuantumEvolutionGNN,
    datas: Sequence[Data],
    atoms: Sequence[AtomGraph],
    train: np.ndarray,
    test: np.ndarray,
    *,
    task: Literal["classification", "regression"],
    seed: int,
    train_pulse: bool = True,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 5e-3,
    pulse_lr: float = 0.05,
    patience: int = 10,
    val_fraction: float = 0.15,
    progress: bool = False,
) -> FoldOutcome:
    """Train ``model`` on ``train`` with early stopping on an inner validation split; predict ``test``.

    As :func:`qgnn.nn.fit_evaluate_gnn` (the same inner split and early-stopping
    loop, :func:`~qgnn.nn.training.train_early_stopping`; Adam), with the pulse
    trained at ``pulse_lr``. With
    ``train_pulse=False`` the pulse stays at its initial values and the
    quantum features are computed once.

    Args:
        model: the :class:`QuantumEvolutionGNN`.
        datas: every graph as ``Data`` with ``y`` and ``qubit`` (:func:`attach_qubits`).
        atoms: every graph's atoms (``model.layer.prepare``), aligned with ``datas``.
        train: positions of the training graphs.
        test: positions of the test graphs.
        task: ``"classification"`` or ``"regression"``.
        seed: seed of the split, weights and batch order.
        train_pulse: train the pulse with the head (default True).
        epochs: maximum epochs (default 30).
        batch_size: graphs per step (default 32).
        lr: Adam learning rate of the head (default 5e-3).
        pulse_lr: Adam learning rate of the raw pulse parameters (default 0.05).
        patience: epochs without validation-loss improvement before stopping (default 10).
        val_fraction: share of ``train`` held out for validation (default 0.15).
        progress: show a bar over epochs.
    """
    start = time.perf_counter()
    y_all = np.array([float(d.y.reshape(-1)[0]) for d in datas])
    tr, va = inner_split(y_all[train], val_fraction, seed, stratify=task == "classification")
    fit_idx, val_idx = np.asarray(train)[tr], np.asarray(train)[va]
    mu, sd = target_scale(y_all[fit_idx], task)
    dtype = torch.long if task == "classification" else torch.float32
    targets = torch.as_tensor(y_all, dtype=dtype)
    for p in model.layer.parameters():
        p.requires_grad_(train_pulse)
    frozen: list[Data] | None = None
    if not train_pulse:
        with torch.no_grad():
            frozen = model.featurise(datas, atoms)

    def features(idx: np.ndarray) -> list[Data]:
        if frozen is not None:
            return [frozen[i] for i in idx]
        return model.featurise([datas[i] for i in idx], [atoms[i] for i in idx])

    def predict(idx: np.ndarray) -> Tensor:
        model.eval()
        with torch.no_grad():
            return torch.cat(
                [model.head(Batch.from_data_list(features(idx[b : b + 64]))) for b in range(0, len(idx), 64)]
            )

    groups = [{"params": list(model.head.parameters()), "lr": lr}]
    if train_pulse:
        groups.append({"params": list(model.layer.parameters()), "lr": pulse_lr})
    optimiser = torch.optim.Adam(groups)
    rng = np.random.default_rng(seed)

    def train_epoch() -> float:
        order = rng.permutation(fit_idx)
        total = 0.0
        for begin in range(0, len(order), batch_size):
            idx = order[begin : begin + batch_size]
            if len(idx) < 2:  # BatchNorm needs two graphs
                continue
            optimiser.zero_grad()
            loss = task_loss(model.head(Batch.from_data_list(features(idx))), targets[idx], task, mu, sd)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        return total / len(order)

    curves = train_early_stopping(
        model,
        train_epoch,
        lambda: (predict(val_idx), targets[val_idx]),
        task=task,
        mu=mu,
        sd=sd,
        epochs=epochs,
        patience=patience,
        desc="qegnn",
        progress=progress,
    )
    out = predict(np.asarray(test))
    y_test = y_all[test].astype(np.int64) if task == "classification" else y_all[test]
    return fold_outcome(
        "qegnn" if train_pulse else "qegnn-fixed",
        task,
        out,
        y_test,
        np.asarray(test, dtype=np.int64),
        curves,
        mu,
        sd,
        time.perf_counter() - start,
    )


def qegnn_folds(
    dataset: GraphDataset,
    embeddings: Sequence[Any],
    folds: Sequence[Fold],
    *,
    seed: int,
    epochs: int = 30,
    out: str | Path,
    progress: bool = True,
    train_pulse: bool = True,
    hidden: int = 64,
    layers: int = 3,
    dropout: float = 0.0,
    batch_size: int = 32,
    lr: float = 5e-3,
    pulse_lr: float = 0.05,
    patience: int = 10,
    **layer_options: Any,
) -> tuple[ModelResult, list[Path]]:
    """``qegnn``: :class:`QuantumEvolutionGNN` trained end to end on every outer fold (the runner's core).

    Graphs are converted with :meth:`GraphDataset.to_pyg` (``x = 1`` where the
    dataset has no node labels); fold ``k`` of repeat ``r`` uses seed
    ``seed + 1000·r + k`` for the layer, the head, the inner split and the
    batch order. Node labels (``"label"`` on every node) get trainable DMM weights.

    Args:
        dataset: the graphs evaluated (fold indices point into it).
        embeddings: one :class:`~qgnn.embedding.Embedding` per graph.
        folds: the outer folds.
        seed: base seed.
        epochs: maximum epochs per fold (default 30).
        out: folder of the learning curves and the pulses' JSON / PNG.
        progress: show a bar over folds.
        train_pulse: train the pulse (default); ``False`` is the same head on
            the initial pulse (model name ``qegnn-fixed``).
        hidden, layers, dropout: the GIN head (defaults 64, 3, 0).
        batch_size, lr, pulse_lr, patience: see :func:`fit_evaluate_qegnn`.
        **layer_options: :class:`RydbergEvolution` arguments.

    Returns:
        The :class:`~qgnn.evaluation.ModelResult` and the files written.
    """
    graphs = list(dataset)
    if len(embeddings) != len(graphs):
        raise InvalidInputError(f"{len(graphs)} graphs but {len(embeddings)} embeddings")
    name = "qegnn" if train_pulse else "qegnn-fixed"
    task = dataset.task
    num_classes = int(dataset.num_classes or 0)
    datas = fill_edgeless(pyg_graphs(dataset))
    length = max(g.number_of_nodes() for g in graphs) + 1
    edge_attr = getattr(datas[0], "edge_attr", None)
    edge_dim = int(edge_attr.shape[1]) if isinstance(edge_attr, Tensor) else None
    pulses: list[dict[str, Any]] = []

    def fit(fold: Fold) -> tuple[FoldOutcome, dict[str, Any]]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(fold_seed(seed, fold))
            layer = fresh_layer(graphs, layer_options)
            atoms = layer.prepare(graphs, embeddings)
            ready = [attach_qubits(d, a, list(g.nodes)) for d, a, g in zip(datas, atoms, graphs, strict=True)]
            model = QuantumEvolutionGNN(
                layer,
                int(datas[0].x.shape[1]),
                num_classes if task == "classification" else 1,
                hist_length=length,
                edge_dim=edge_dim,
                hidden=hidden,
                layers=layers,
                dropout=dropout,
                task=task,
            )
            outcome = fit_evaluate_qegnn(
                model,
                ready,
                atoms,
                fold.train,
                fold.test,
                task=task,
                seed=fold_seed(seed, fold),
                train_pulse=train_pulse,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                pulse_lr=pulse_lr,
                patience=patience,
            )
        pulses.append({"repeat": fold.repeat, "fold": fold.fold, "pulse": layer.pulse_values()})
        return outcome, {}

    result, png = run_folds(name, dataset, folds, fit, out=out, progress=progress)
    stem, title = f"{dataset.name}-{name}", f"{dataset.name}: {name} pulses"
    return result, [png, *save_pulses(pulses, Path(out), stem, title)]


def evaluate_qegnn(ctx: Any) -> ModelResult:
    """``qegnn`` on a :class:`qgnn.experiment.RunContext` (its ``plain`` embeddings, ``gnn_epochs``)."""
    return _run_qegnn(ctx, train_pulse=True)


def evaluate_qegnn_fixed(ctx: Any) -> ModelResult:
    """``qegnn-fixed``: the same head on the initial (untrained) pulse, on a RunContext."""
    return _run_qegnn(ctx, train_pulse=False)


def _run_qegnn(ctx: Any, *, train_pulse: bool) -> ModelResult:
    result, files = qegnn_folds(
        ctx.dataset,
        [r.embedding for r in ctx.results["plain"]],
        ctx.folds,
        seed=ctx.config.seed,
        epochs=ctx.config.gnn_epochs,
        out=ctx.out,
        progress=ctx.progress,
        train_pulse=train_pulse,
    )
    ctx.files.extend(files)
    return result

"""Models that train the pulse: the QEK kernel tuned by alignment, and an end-to-end quantum GNN.

- ``qek-trained``: :func:`fit_kernel_alignment` tunes a :class:`RydbergEvolution`
  (drive and label weights) to maximise the centred kernel-target alignment
  of the QEK kernel K = exp(−μ·JS) on a fold's **training** graphs; the
  tuned pulse then featurises every graph and the fold is scored by the usual
  QEK-SVM (μ and C tuned by inner CV on the training graphs,
  :class:`qgnn.evaluation.KernelModels`). :func:`qek_trained_source` is the
  per-fold Gram source, :func:`qek_trained_gram` its ``qgnn train`` entry.
- ``qegnn``: :class:`QuantumEvolutionGNN` chains the layer into the GIN head
  of :class:`~qgnn.nn.QuantumGIN` (⟨n_i⟩ per node, the connected
  correlations' row statistics as positional encoding, C_ij per edge, the
  excitation distribution in the readout); pulse and head are trained
  together (:func:`qegnn_folds`), or the head alone on the initial pulse
  (``train_pulse=False``, the "untrained pulse" baseline with the same head).

Every fold's learned pulse is written to one JSON file and overlaid in one
plot (Ω(t), δ(t), label weights).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from tqdm.auto import tqdm

from qgnn.errors import InvalidInputError
from qgnn.nn.models import QuantumGIN
from qgnn.nn.rydberg import AtomGraph, RydbergEvolution, RydbergOutput, plot_pulse, write_pulse
from qgnn.nn.training import FoldOutcome, inner_split, plot_learning_curves
from qgnn.nn.transforms import fill_edgeless

if TYPE_CHECKING:
    from qgnn.data import GraphDataset
    from qgnn.evaluation import Fold, ModelResult

#: Per-node statistics of the connected correlations in ``pe_q`` (those of :func:`correlation_encodings`).
ROW_STATISTICS = 5


# ----------------------------------------------------------------------------- kernel alignment


def js_matrix(p: Tensor) -> Tensor:
    """Pairwise Jensen–Shannon divergences (nats) between the rows of ``p``, differentiable.

    The torch twin of :func:`qgnn.kernels.jensen_shannon` (0·log 0 = 0, no smoothing).

    Args:
        p: distributions, shape ``(B, L)``, rows summing to 1.

    Returns:
        ``(B, B)`` tensor with values in [0, ln 2].
    """
    a, b = p[:, None, :], p[None, :, :]
    m = 0.5 * (a + b)
    log_m = torch.log(torch.where(m > 0, m, torch.ones_like(m)))

    def kl_part(x: Tensor) -> Tensor:
        log_x = torch.log(torch.where(x > 0, x, torch.ones_like(x)))
        return torch.where(x > 0, x * (log_x - log_m), torch.zeros_like(m)).sum(-1)

    return (0.5 * (kl_part(a) + kl_part(b))).clamp(0.0, math.log(2.0))


def kernel_target_alignment(distributions: Tensor, y: Tensor, mu: Tensor | float) -> Tensor:
    r"""Centred alignment of K = exp(−μ·JS) with the class target matrix.

    :math:`A = \langle K_c, T_c\rangle_F / (\lVert K_c\rVert_F \lVert T_c\rVert_F)`, with
    :math:`X_c = HXH`, :math:`H = I − 11^T/B`, and :math:`T_{ab} = 1` for graphs
    of the same class, :math:`−1/(C−1)` otherwise (Cortes et al., 2012).

    Args:
        distributions: excitation distributions, ``(B, L)``.
        y: class indices, ``(B,)`` (at least two classes).
        mu: kernel scale μ > 0.

    Returns:
        Scalar alignment in [−1, 1] (higher is better).
    """
    classes = int(torch.unique(y).numel())
    if classes < 2:
        raise InvalidInputError("kernel-target alignment needs at least two classes in the batch")
    kernel = torch.exp(-mu * js_matrix(distributions))
    same = (y[:, None] == y[None, :]).to(kernel.dtype)
    target = same - (1.0 - same) / (classes - 1)

    def centred(x: Tensor) -> Tensor:
        return x - x.mean(0, keepdim=True) - x.mean(1, keepdim=True) + x.mean()

    kc, tc = centred(kernel), centred(target)
    return (kc * tc).sum() / (kc.norm() * tc.norm()).clamp_min(1e-12)


@dataclass(frozen=True)
class AlignmentFit:
    """What :func:`fit_kernel_alignment` did.

    Args:
        alignment: mean mini-batch alignment per epoch (the first entry is before training).
        mu: the kernel scale μ learnt with the pulse.
        seconds: wall-clock time (s).
    """

    alignment: tuple[float, ...]
    mu: float
    seconds: float


def fit_kernel_alignment(
    layer: RydbergEvolution,
    atoms: Sequence[AtomGraph],
    y: np.ndarray | Sequence[int],
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.05,
    mu: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> AlignmentFit:
    """Tune ``layer`` (and log μ) with Adam to maximise the QEK kernel's alignment on ``atoms``.

    Each step evolves one shuffled mini-batch and ascends its centred
    kernel-target alignment; batches with a single class are skipped.

    Args:
        layer: the layer to train (its parameters are updated in place).
        atoms: the training graphs (``layer.prepare``).
        y: their class indices.
        epochs: passes over ``atoms`` (default 10).
        batch_size: graphs per step (default 32).
        lr: Adam learning rate of the raw pulse parameters and log μ (default 0.05).
        mu: initial kernel scale μ (default 1).
        seed: seed of the batch order.
        progress: show a bar over epochs.

    Returns:
        The :class:`AlignmentFit`.
    """
    start = time.perf_counter()
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if labels.numel() != len(atoms) or len(atoms) < 2:
        raise InvalidInputError(f"need one class per graph and at least 2 graphs, got {len(atoms)} graphs")
    for name, value, least in (("epochs", epochs, 0), ("batch_size", batch_size, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInputError(f"{name} must be an integer ≥ {least}, got {value!r}")
    log_mu = nn.Parameter(torch.tensor(math.log(mu), dtype=torch.float64))
    optimiser = torch.optim.Adam([*layer.parameters(), log_mu], lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in tqdm(range(epochs + 1), desc="alignment", leave=False, disable=not progress):
        order = rng.permutation(len(atoms))
        scores = []
        for begin in range(0, len(order), batch_size):
            idx = order[begin : begin + batch_size]
            if len(idx) < 2 or torch.unique(labels[idx]).numel() < 2:
                continue
            train = epoch > 0  # epoch 0 only measures the initial pulse
            with torch.set_grad_enabled(train):
                out = layer([atoms[i] for i in idx])
                score = kernel_target_alignment(out.excitation_matrix(), labels[idx], log_mu.exp())
            if train:
                optimiser.zero_grad()
                (-score).backward()
                optimiser.step()
            scores.append(float(score.detach()))
        history.append(float(np.mean(scores)) if scores else math.nan)
    return AlignmentFit(tuple(history), float(log_mu.detach().exp()), time.perf_counter() - start)


def _dataset_labels(graphs: Sequence[Any], attribute: str) -> list[Hashable] | None:
    """The sorted values of ``attribute`` over every node, or ``None`` if some node lacks it."""
    values: set[Hashable] = set()
    for g in graphs:
        for _, attrs in g.nodes(data=True):
            if attribute not in attrs:
                return None
            values.add(attrs[attribute])
    return sorted(values, key=repr) if values else None


def _make_layer(graphs: Sequence[Any], options: dict[str, Any]) -> RydbergEvolution:
    options = dict(options)
    if "labels" not in options:
        options["labels"] = _dataset_labels(graphs, options.get("attribute", "label"))
    return RydbergEvolution(**options)


def fold_seed(seed: int, fold: Fold) -> int:
    """The seed of one outer fold, ``seed + 1000·repeat + fold`` (as :func:`qgnn.nn.evaluate_gnn`)."""
    return seed + 1000 * fold.repeat + fold.fold


def _save_pulses(pulses: list[dict[str, Any]], out: Path, stem: str, title: str) -> list[Path]:
    json_path = write_pulse({"folds": pulses}, out / f"{stem}-pulses.json")
    return [json_path, plot_pulse([p["pulse"] for p in pulses], out / f"{stem}-pulses.png", title=title)]


def qek_trained_source(
    graphs: Sequence[Any],
    embeddings: Sequence[Any],
    y: np.ndarray | Sequence[int],
    *,
    seed: int,
    out: str | Path,
    dataset_name: str = "graphs",
    name: str = "qek-trained",
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.05,
    **layer_options: Any,
) -> Callable[[Fold], dict[tuple[tuple[str, Any], ...], np.ndarray]]:
    """``qek-trained`` as a per-fold Gram source for :class:`qgnn.evaluation.KernelModels`.

    For an outer fold: a fresh :class:`RydbergEvolution` (seeded by
    :func:`fold_seed`) is tuned by :func:`fit_kernel_alignment` on the fold's
    **training** graphs only; every graph is then evolved under the tuned
    pulse and the QEK family (one Gram matrix per μ,
    :func:`qgnn.kernels.families.qek_family`) is returned, each keyed with
    the fold's alignment before and after training (recorded with the
    fold's choice). Node labels (``"label"`` on every node) get trainable
    DMM weights. After each fold, :func:`pulse_files` (``<out>/<dataset_name>-<name>-pulses.json``
    and ``.png``) hold every fold's pulse so far.

    Args:
        graphs: the evaluated graphs (fold indices point into them).
        embeddings: one :class:`~qgnn.embedding.Embedding` per graph (e.g. the
            feature pipeline's ``results[i].embedding``).
        y: class indices.
        seed: base seed.
        out: output folder.
        dataset_name: dataset name in the file names.
        name: model name in the file names (default ``"qek-trained"``).
        epochs: alignment epochs per fold (default 10; 0 keeps the initial pulse).
        batch_size: graphs per alignment step (default 32).
        lr: Adam learning rate (default 0.05).
        **layer_options: :class:`RydbergEvolution` arguments (``segments``,
            ``duration``, ``energy_cutoff``, ``labels``, ...).
    """
    from qgnn.kernels.families import qek_family

    graphs = list(graphs)
    if len(embeddings) != len(graphs):
        raise InvalidInputError(f"{len(graphs)} graphs but {len(embeddings)} embeddings")
    y = np.asarray(y)
    length = max(g.number_of_nodes() for g in graphs) + 1
    pulses: list[dict[str, Any]] = []

    def source(fold: Fold) -> dict[tuple[tuple[str, Any], ...], np.ndarray]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(fold_seed(seed, fold))
            layer = _make_layer(graphs, layer_options)
            atoms = layer.prepare(graphs, embeddings)
            fit = fit_kernel_alignment(
                layer,
                [atoms[i] for i in fold.train],
                y[fold.train],
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=fold_seed(seed, fold),
            )
            with torch.no_grad():
                X = layer(atoms).excitation_matrix(length).numpy()
        pulse = layer.pulse_values()
        pulses.append(
            {"repeat": fold.repeat, "fold": fold.fold, "alignment": list(fit.alignment), "pulse": pulse}
        )
        _save_pulses(pulses, Path(out), f"{dataset_name}-{name}", f"{dataset_name}: {name} pulses")
        tag = (
            ("alignment_before", round(fit.alignment[0], 4)),
            ("alignment_after", round(fit.alignment[-1], 4)),
        )
        return {(*tag, *params): gram for params, gram in qek_family(X).items()}

    return source


def pulse_files(dataset_name: str, name: str, out: str | Path) -> list[Path]:
    """The JSON and PNG where :func:`qek_trained_source` / :func:`qegnn_folds` write the pulses."""
    stem = Path(out) / f"{dataset_name}-{name}-pulses"
    return [stem.with_suffix(".json"), stem.with_suffix(".png")]


def qek_trained_gram(ctx: Any) -> Callable[[Fold], dict[tuple[tuple[str, Any], ...], np.ndarray]]:
    """The ``qek-trained`` Gram source of a :class:`qgnn.experiment.RunContext` (its ``plain`` embeddings)."""
    ctx.files.extend(pulse_files(ctx.dataset.name, "qek-trained", ctx.out))
    return qek_trained_source(
        ctx.graphs,
        [r.embedding for r in ctx.results["plain"]],
        ctx.y,
        seed=ctx.config.seed,
        out=ctx.out,
        dataset_name=ctx.dataset.name,
    )


# ----------------------------------------------------------------------------- end-to-end GNN


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


def _loss(out: Tensor, y: Tensor, task: str, mu: float, sd: float) -> Tensor:
    if task == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out, (y - mu) / sd)


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

    As :func:`qgnn.nn.fit_evaluate_gnn` (same inner split, Adam, best-validation
    weights, patience), with the pulse trained at ``pulse_lr``. With
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
    y_fit = y_all[train]
    tr, va = inner_split(y_fit, val_fraction, seed, stratify=task == "classification")
    fit_idx, val_idx = np.asarray(train)[tr], np.asarray(train)[va]
    mu, sd = (0.0, 1.0)
    if task == "regression":
        mu, sd = float(y_all[fit_idx].mean()), float(y_all[fit_idx].std()) or 1.0
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
    train_curve: list[float] = []
    val_curve: list[float] = []
    metric_curve: list[float] = []
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    for epoch in tqdm(range(epochs), desc="qegnn", leave=False, disable=not progress):
        model.train()
        order = rng.permutation(fit_idx)
        total = 0.0
        for begin in range(0, len(order), batch_size):
            idx = order[begin : begin + batch_size]
            if len(idx) < 2:  # BatchNorm needs two graphs
                continue
            optimiser.zero_grad()
            loss = _loss(model.head(Batch.from_data_list(features(idx))), targets[idx], task, mu, sd)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        train_curve.append(total / len(order))
        out = predict(val_idx)
        val_curve.append(float(_loss(out, targets[val_idx], task, mu, sd)))
        if task == "classification":
            metric_curve.append(float((out.argmax(-1) == targets[val_idx]).float().mean()))
        else:
            metric_curve.append(float((out * sd + mu - targets[val_idx]).abs().mean()))
        if val_curve[-1] < best[0]:
            best = (val_curve[-1], epoch, copy.deepcopy(model.state_dict()))
        if epoch - best[1] >= patience:
            break
    model.load_state_dict(best[2])
    out = predict(np.asarray(test))
    if task == "classification":
        score = torch.softmax(out, dim=-1).numpy().astype(np.float64)
        pred = score.argmax(axis=1)
        y_test = y_all[test].astype(np.int64)
    else:
        score, pred, y_test = None, out.numpy().astype(np.float64) * sd + mu, y_all[test]
    return FoldOutcome(
        model="qegnn" if train_pulse else "qegnn-fixed",
        task=task,
        y_true=y_test,
        y_pred=pred,
        y_score=score,
        test_index=np.asarray(test, dtype=np.int64),
        train_loss=tuple(train_curve),
        val_loss=tuple(val_curve),
        val_metric=tuple(metric_curve),
        metric_name="accuracy" if task == "classification" else "mae",
        best_epoch=best[1],
        seconds=time.perf_counter() - start,
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
    from qgnn.evaluation import FoldRecord, ModelResult, score

    graphs = list(dataset)
    if len(embeddings) != len(graphs):
        raise InvalidInputError(f"{len(graphs)} graphs but {len(embeddings)} embeddings")
    name = "qegnn" if train_pulse else "qegnn-fixed"
    task = dataset.task
    num_classes = int(dataset.num_classes or 0)
    datas = fill_edgeless(dataset.to_pyg())
    for data in datas:
        if getattr(data, "x", None) is None:
            data.x = torch.ones(int(data.num_nodes or 0), 1)
    length = max(g.number_of_nodes() for g in graphs) + 1
    edge_attr = getattr(datas[0], "edge_attr", None)
    edge_dim = int(edge_attr.shape[1]) if isinstance(edge_attr, Tensor) else None
    records, outcomes, pulses = [], [], []
    for fold in tqdm(folds, desc=f"{name} folds", disable=not progress):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(fold_seed(seed, fold))
            layer = _make_layer(graphs, layer_options)
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
        outcomes.append(outcome)
        records.append(
            FoldRecord(
                repeat=fold.repeat,
                fold=fold.fold,
                metrics=score(outcome.y_true, outcome.y_pred, task),
                best_params={"best_epoch": outcome.best_epoch + 1, "epochs_run": outcome.epochs_run},
                seconds=outcome.seconds,
                y_true=outcome.y_true.tolist(),
                y_pred=outcome.y_pred.tolist(),
            )
        )
        pulses.append({"repeat": fold.repeat, "fold": fold.fold, "pulse": layer.pulse_values()})
    out = Path(out)
    files = [
        plot_learning_curves(
            outcomes, out / f"{dataset.name}-{name}-learning-curves.png", title=f"{dataset.name}: {name}"
        )
    ]
    files += _save_pulses(pulses, out, f"{dataset.name}-{name}", f"{dataset.name}: {name} pulses")
    return ModelResult(name, task, records), files


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

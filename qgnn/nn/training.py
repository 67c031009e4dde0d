"""Train and evaluate a GNN on one cross-validation fold, with early stopping.

The caller (``qgnn train``) makes the outer folds; :func:`fit_evaluate_gnn`
carves an inner validation split from each fold's training graphs, trains with
Adam, keeps the weights of the epoch with the lowest validation loss, stops
after ``patience`` epochs without improvement, and predicts the test graphs.
Seeds fix the weights, the inner split and the batch order, so a run is
repeatable on CPU. :func:`evaluate_gnn` runs every outer fold; with
``label_observables=True`` it fits the label vocabulary of the per-label
observables ``g_q`` on each fold's training graphs only.

The pieces that any model trained per fold shares (``qegnn`` in
:mod:`qgnn.nn.qegnn` too): :func:`inner_split`, :func:`target_scale` and
:func:`task_loss`; :func:`train_early_stopping` (the epoch loop) and
:func:`fold_outcome`; :func:`run_folds` (the outer folds, their records and
the learning-curve plot) with :func:`fold_seed`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from qgnn.data.convert import data_index
from qgnn.errors import DatasetError, InvalidGraphError, InvalidInputError, graph_label
from qgnn.features import label_observables_matrix, label_vocabulary
from qgnn.nn.models import GIN, QuantumGIN, QuantumGPS
from qgnn.nn.transforms import _check_pooling, attach_quantum_features, fill_edgeless

if TYPE_CHECKING:
    import networkx as nx

    from qgnn.data import GraphDataset
    from qgnn.evaluation import Fold, ModelResult
    from qgnn.features import GraphResult
    from qgnn.features.maps import TimePooling

ModelName = Literal["qgin", "qgps", "gin"]
MODELS: tuple[str, ...] = ("qgin", "qgps", "gin")
QUANTUM_KEYS: tuple[str, ...] = ("x_q", "pe_q", "edge_attr_q", "hist_q")
#: Optional graph-level quantum input (per-label observables): used by the quantum models when present.
GRAPH_KEY = "g_q"


@dataclass(frozen=True, eq=False)
class FoldOutcome:
    """What one fold produced.

    Args:
        model: ``"qgin"``, ``"qgps"`` or ``"gin"``.
        task: ``"classification"`` or ``"regression"``.
        y_true: test targets, shape ``(n_test,)``.
        y_pred: predicted class labels or regression values, shape ``(n_test,)``.
        y_score: class probabilities ``(n_test, C)``, or ``None`` for regression.
        test_index: dataset index (``data.idx``) of each test graph (its position in ``test`` when absent).
        train_loss: mean training loss per epoch.
        val_loss: validation loss per epoch (cross-entropy, or MSE of standardised targets).
        val_metric: validation accuracy (classification) or MAE in target units, per epoch.
        metric_name: ``"accuracy"`` or ``"mae"``.
        best_epoch: 0-based epoch whose weights were kept (lowest validation loss).
        seconds: wall-clock time of the fold, s.
    """

    model: str
    task: str
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None
    test_index: np.ndarray
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_metric: tuple[float, ...]
    metric_name: str
    best_epoch: int
    seconds: float

    @property
    def epochs_run(self) -> int:
        """Number of epochs trained before early stopping (or the epoch limit)."""
        return len(self.train_loss)

    def metrics(self) -> dict[str, float]:
        """Test metrics: ``accuracy`` for classification; ``mae`` and ``rmse`` for regression."""
        if self.task == "classification":
            return {"accuracy": float(np.mean(self.y_pred == self.y_true))}
        err = self.y_pred - self.y_true
        return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        return {
            "model": self.model,
            "task": self.task,
            "metrics": self.metrics(),
            "y_true": self.y_true.tolist(),
            "y_pred": self.y_pred.tolist(),
            "y_score": None if self.y_score is None else self.y_score.tolist(),
            "test_index": self.test_index.tolist(),
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss),
            "val_metric": list(self.val_metric),
            "metric_name": self.metric_name,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "seconds": self.seconds,
        }


def _width(data: Data, key: str) -> int | None:
    value = getattr(data, key, None)
    if not isinstance(value, Tensor):
        return None
    if value.dim() != 2:
        raise InvalidGraphError(
            f"{graph_label(data_index(data))}: data.{key} must be 2-D, got shape {tuple(value.shape)}"
        )
    return int(value.size(1))


def build_model(
    model: ModelName,
    sample: Data,
    *,
    task: Literal["classification", "regression"],
    num_classes: int,
    hidden: int = 64,
    layers: int = 3,
    dropout: float = 0.0,
    edge_features: bool = True,
) -> nn.Module:
    """Build ``model`` with input widths read from one featurised graph.

    Args:
        model: ``"qgin"`` (:class:`QuantumGIN`), ``"qgps"`` (:class:`QuantumGPS`) or ``"gin"`` (:class:`GIN`).
        sample: a graph of the dataset (with quantum attributes for quantum models).
        task: ``"classification"`` or ``"regression"``.
        num_classes: classes (ignored for regression).
        hidden: hidden width (default 64).
        layers: message-passing layers (default 3).
        dropout: dropout rate (default 0).
        edge_features: use ``edge_attr`` (and ``edge_attr_q``) when present (default True).

    Quantum models also read the per-label observables ``g_q`` when ``sample`` has them.
    """
    if model not in MODELS:
        raise InvalidInputError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    in_channels = _width(sample, "x")
    if in_channels is None:
        raise DatasetError(
            f"{graph_label(data_index(sample))} has no node features data.x: give every node a "
            "feature (e.g. x = torch.ones(n, 1))"
        )
    out = 1 if task == "regression" else num_classes
    edge_dim = _width(sample, "edge_attr") if edge_features else None
    if model == "gin":
        return GIN(
            in_channels, out, edge_dim=edge_dim, hidden=hidden, layers=layers, dropout=dropout, task=task
        )
    widths = {key: _width(sample, key) for key in QUANTUM_KEYS}
    missing = [key for key, w in widths.items() if w is None]
    if missing:
        raise DatasetError(
            f"{model} needs quantum features ({', '.join(missing)} missing): apply qgnn.nn.QuantumFeatures "
            "or use qgnn.nn.QuantumDataset"
        )
    cls = QuantumGIN if model == "qgin" else QuantumGPS
    return cls(
        in_channels,
        widths["x_q"],  # type: ignore[arg-type]
        widths["pe_q"],  # type: ignore[arg-type]
        widths["hist_q"],  # type: ignore[arg-type]
        out,
        edge_dim=edge_dim,
        q_edge_dim=widths["edge_attr_q"] if edge_features else None,
        graph_dim=_width(sample, GRAPH_KEY),
        hidden=hidden,
        layers=layers,
        dropout=dropout,
        task=task,
    )


def _targets(datas: Sequence[Data], task: str, num_classes: int, where: str) -> np.ndarray:
    values = []
    for pos, data in enumerate(datas):
        y = getattr(data, "y", None)
        if not isinstance(y, Tensor) or y.numel() != 1:
            raise DatasetError(
                f"{graph_label(data_index(data))} ({where} position {pos}) needs one target data.y, got {y!r}"
            )
        values.append(float(y.reshape(-1)[0]))
    arr = np.asarray(values)
    if not np.all(np.isfinite(arr)):
        raise DatasetError(f"{where} targets contain NaN or infinity")
    if task == "classification":
        bad = [v for v in arr if v != int(v) or not 0 <= v < num_classes]
        if bad:
            raise DatasetError(
                f"{where} class labels must be integers in 0..{num_classes - 1}, got {sorted(set(bad))[:5]}: "
                "map labels to 0..C-1 first"
            )
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _check_graphs(datas: Sequence[Data], model: str, reference: Data, where: str) -> None:
    keys = ["x", "edge_attr"] + ([*QUANTUM_KEYS, GRAPH_KEY] if model != "gin" else [])
    expected = {key: _width(reference, key) for key in keys}
    for data in datas:
        label = graph_label(data_index(data))
        for key, width in expected.items():
            if _width(data, key) != width:
                raise DatasetError(
                    f"{label} ({where}): data.{key} has width {_width(data, key)}, the first training graph "
                    f"{width}: every graph needs the same feature layout"
                )
        if model != "gin":
            ok = getattr(data, "q_ok", None)
            if isinstance(ok, Tensor) and not bool(ok.all()):
                raise DatasetError(
                    f"{label} ({where}) has no quantum features (q_ok=False): drop failed graphs from the "
                    "dataset for every model before making folds, so all models see the same graphs"
                )


def inner_split(
    y: np.ndarray, val_fraction: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions ``(train, validation)`` into ``y``, ``val_fraction`` of them held out for validation.

    At least one position lands on each side. Stratified by class when
    ``stratify`` and every class allows it (a plain random split otherwise);
    fixed by ``seed``.
    """
    n = len(y)
    n_val = min(max(1, int(round(val_fraction * n))), n - 1)
    idx = np.arange(n)
    if stratify:
        try:
            tr, va = train_test_split(idx, test_size=n_val, random_state=seed, stratify=y)
            return np.sort(tr), np.sort(va)
        except ValueError:  # a class too rare to stratify: fall back to a plain random split
            pass
    tr, va = train_test_split(idx, test_size=n_val, random_state=seed)
    return np.sort(tr), np.sort(va)


def _with_target(datas: Sequence[Data], y: np.ndarray, task: str, keys: Sequence[str]) -> list[Data]:
    """Slim copies holding only what the model reads, with ``y`` a (1,) tensor of the training dtype."""
    out = []
    dtype = torch.long if task == "classification" else torch.float32
    for data, value in zip(datas, y, strict=True):
        slim = Data(
            edge_index=data.edge_index, num_nodes=data.num_nodes, y=torch.tensor([value], dtype=dtype)
        )
        for key in keys:
            if getattr(data, key, None) is not None:
                slim[key] = data[key]
        out.append(slim)
    return out


def fit_evaluate_gnn(
    model: ModelName,
    train: Sequence[Data],
    test: Sequence[Data],
    *,
    task: Literal["classification", "regression"],
    num_classes: int,
    seed: int,
    epochs: int = 200,
    hidden: int = 64,
    layers: int = 3,
    lr: float = 5e-3,
    batch_size: int = 32,
    patience: int = 30,
    val_fraction: float = 0.15,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
    edge_features: bool = True,
    progress: bool = True,
) -> FoldOutcome:
    """Train ``model`` on ``train`` (early stopping on an inner validation split) and predict ``test``.

    The inner validation split (``val_fraction`` of ``train``, stratified by
    class when possible) and the weights and batch order are fixed by
    ``seed``; the global torch RNG state is restored afterwards. Regression
    targets are standardised with the inner-training mean and standard
    deviation; predictions are returned in target units.

    Args:
        model: ``"qgin"``, ``"qgps"`` or ``"gin"``.
        train: training graphs of the fold (quantum models need QuantumFeatures attributes).
        test: test graphs of the fold.
        task: ``"classification"`` (``y`` in 0..C−1) or ``"regression"``.
        num_classes: number of classes C (ignored for regression).
        seed: seed of the split, weights and batch order.
        epochs: maximum epochs (default 200).
        hidden: hidden width (default 64).
        layers: message-passing layers (default 3).
        lr: Adam learning rate (default 5e-3).
        batch_size: graphs per batch (default 32).
        patience: epochs without validation-loss improvement before stopping (default 30).
        val_fraction: share of ``train`` held out for validation (default 0.15).
        dropout: dropout rate (default 0).
        weight_decay: Adam weight decay (default 0).
        edge_features: use ``edge_attr``/``edge_attr_q`` when present (default True).
        progress: show a tqdm bar over epochs (default True).

    Returns:
        The fold's :class:`FoldOutcome`.

    Example:
        >>> outcome = fit_evaluate_gnn("gin", train, test, task="classification",  # doctest: +SKIP
        ...                            num_classes=2, seed=0, epochs=50)
        >>> outcome.metrics()  # doctest: +SKIP
        {'accuracy': 0.85}
    """
    start = time.perf_counter()
    if model not in MODELS:
        raise InvalidInputError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    if task not in ("classification", "regression"):
        raise InvalidInputError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "classification" and num_classes < 2:
        raise InvalidInputError(f"classification needs num_classes ≥ 2, got {num_classes}")
    if not 0.0 < val_fraction < 1.0:
        raise InvalidInputError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    if len(train) < 2:
        raise DatasetError(f"a fold needs at least 2 training graphs (one for validation), got {len(train)}")
    if len(test) < 1:
        raise DatasetError("a fold needs at least 1 test graph")
    filled = fill_edgeless([*train, *test])
    train, test = filled[: len(train)], filled[len(train) :]
    _check_graphs(train + test, model, train[0], "fold")
    y_train = _targets(train, task, num_classes, "train")
    y_test = _targets(test, task, num_classes, "test")
    tr, va = inner_split(y_train, val_fraction, seed, stratify=task == "classification")
    mu, sd = target_scale(y_train[tr], task)
    keys = ["x", "edge_attr", *QUANTUM_KEYS, GRAPH_KEY]
    fit_set = _with_target([train[i] for i in tr], y_train[tr], task, keys)
    val_set = _with_target([train[i] for i in va], y_train[va], task, keys)
    test_set = _with_target(test, y_test, task, keys)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_model(
            model,
            train[0],
            task=task,
            num_classes=num_classes,
            hidden=hidden,
            layers=layers,
            dropout=dropout,
            edge_features=edge_features,
        )
        optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        loader = DataLoader(
            fit_set, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)
        )

        def train_epoch() -> float:
            total = 0.0
            for batch in loader:
                optimiser.zero_grad()
                loss = task_loss(net(batch), batch.y, task, mu, sd)
                loss.backward()
                optimiser.step()
                total += loss.item() * batch.num_graphs
            return total / len(fit_set)

        curves = train_early_stopping(
            net,
            train_epoch,
            lambda: _predict(net, val_set, batch_size),
            task=task,
            mu=mu,
            sd=sd,
            epochs=epochs,
            patience=patience,
            desc=f"{model} (seed {seed})",
            progress=progress,
        )
        out, _ = _predict(net, test_set, batch_size)

    index = [data_index(d) for d in test]
    test_index = np.array([pos if i is None else i for pos, i in enumerate(index)], dtype=np.int64)
    return fold_outcome(model, task, out, y_test, test_index, curves, mu, sd, time.perf_counter() - start)


def target_scale(y: np.ndarray, task: str) -> tuple[float, float]:
    """``(mu, sd)`` standardising regression targets ``y`` (sd 1 if all are equal); ``(0, 1)`` to classify."""
    if task == "regression":
        return float(y.mean()), float(y.std()) or 1.0
    return 0.0, 1.0


def task_loss(out: Tensor, y: Tensor, task: str, mu: float, sd: float) -> Tensor:
    """Cross-entropy of the logits ``out``, or MSE of ``out`` against the standardised ``(y − mu)/sd``."""
    if task == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out, (y - mu) / sd)


@dataclass(frozen=True)
class TrainingCurves:
    """What :func:`train_early_stopping` recorded (the fields of :class:`FoldOutcome` of the same names)."""

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_metric: tuple[float, ...]
    best_epoch: int


def train_early_stopping(
    net: nn.Module,
    train_epoch: Callable[[], float],
    validate: Callable[[], tuple[Tensor, Tensor]],
    *,
    task: str,
    mu: float,
    sd: float,
    epochs: int,
    patience: int,
    desc: str,
    progress: bool,
) -> TrainingCurves:
    """Train ``net`` epoch by epoch, keep the weights of the lowest validation loss, stop when it stalls.

    Before each epoch ``net`` is put in training mode; after it the
    validation loss (:func:`task_loss`) and metric (accuracy, or MAE in target
    units) are recorded. Training stops ``patience`` epochs after the best
    one, or after ``epochs``; the best epoch's weights are then loaded into ``net``.

    Args:
        net: the model trained (its ``state_dict`` is the one kept).
        train_epoch: one pass over the training graphs; returns their mean loss.
        validate: the model's outputs and the targets on the validation graphs (in eval mode).
        task: ``"classification"`` or ``"regression"``.
        mu, sd: the regression targets' standardisation (:func:`target_scale`).
        epochs: maximum epochs.
        patience: epochs without validation-loss improvement before stopping.
        desc: label of the progress bar over epochs.
        progress: show that bar.
    """
    train_curve: list[float] = []
    val_curve: list[float] = []
    metric_curve: list[float] = []
    best = (float("inf"), 0, copy.deepcopy(net.state_dict()))
    bar = tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=not progress)
    for epoch in bar:
        net.train()
        train_curve.append(train_epoch())
        out, y = validate()
        val_curve.append(float(task_loss(out, y, task, mu, sd)))
        metric_curve.append(_metric(out, y, task, mu, sd))
        if val_curve[-1] < best[0]:
            best = (val_curve[-1], epoch, copy.deepcopy(net.state_dict()))
        bar.set_postfix(train=f"{train_curve[-1]:.3f}", val=f"{val_curve[-1]:.3f}", refresh=False)
        if epoch - best[1] >= patience:
            break
    bar.close()
    net.load_state_dict(best[2])
    return TrainingCurves(tuple(train_curve), tuple(val_curve), tuple(metric_curve), best[1])


def fold_outcome(
    model: str,
    task: str,
    out: Tensor,
    y_true: np.ndarray,
    test_index: np.ndarray,
    curves: TrainingCurves,
    mu: float,
    sd: float,
    seconds: float,
) -> FoldOutcome:
    """The :class:`FoldOutcome` of the test outputs ``out``.

    Classification: softmax probabilities and their argmax; regression: ``out``
    back in target units (``out·sd + mu``).
    """
    if task == "classification":
        score = torch.softmax(out, dim=-1).numpy().astype(np.float64)
        pred = score.argmax(axis=1)
    else:
        score = None
        pred = out.numpy().astype(np.float64) * sd + mu
    return FoldOutcome(
        model=model,
        task=task,
        y_true=y_true,
        y_pred=pred,
        y_score=score,
        test_index=test_index,
        train_loss=curves.train_loss,
        val_loss=curves.val_loss,
        val_metric=curves.val_metric,
        metric_name="accuracy" if task == "classification" else "mae",
        best_epoch=curves.best_epoch,
        seconds=seconds,
    )


@torch.no_grad()
def _predict(net: nn.Module, datas: Sequence[Data], batch_size: int) -> tuple[Tensor, Tensor]:
    net.eval()
    outs, ys = [], []
    for batch in DataLoader(list(datas), batch_size=batch_size, shuffle=False):
        outs.append(net(batch))
        ys.append(batch.y)
    return torch.cat(outs), torch.cat(ys)


def _metric(out: Tensor, y: Tensor, task: str, mu: float, sd: float) -> float:
    if task == "classification":
        return float((out.argmax(dim=-1) == y).float().mean())
    return float((out * sd + mu - y).abs().mean())


def plot_learning_curves(
    outcomes: Sequence[FoldOutcome], path: str | Path, *, title: str | None = None
) -> Path:
    """Plot training/validation loss and the validation metric of each fold to a PNG.

    Args:
        outcomes: folds of one model (one line colour per fold; dot = kept epoch).
        path: PNG file to write (parent folders are created).
        title: figure title (default: the model name).

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not outcomes:
        raise InvalidInputError("plot_learning_curves needs at least one FoldOutcome")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_metric = fig.subplots(1, 2)
    for k, o in enumerate(outcomes):
        color = f"C{k % 10}"
        epochs = np.arange(1, o.epochs_run + 1)
        ax_loss.plot(epochs, o.train_loss, color=color, lw=1)
        ax_loss.plot(epochs, o.val_loss, color=color, lw=1, ls="--")
        ax_loss.plot(o.best_epoch + 1, o.val_loss[o.best_epoch], "o", color=color, ms=4)
        ax_metric.plot(epochs, o.val_metric, color=color, lw=1)
        ax_metric.plot(o.best_epoch + 1, o.val_metric[o.best_epoch], "o", color=color, ms=4)
    if all(v > 0 for o in outcomes for v in (*o.train_loss, *o.val_loss)):
        ax_loss.set_yscale("log")
    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss (solid: train, dashed: validation)")
    metric = outcomes[0].metric_name
    ax_metric.set(xlabel="epoch", ylabel=f"validation {metric}", title=f"validation {metric}")
    ax_loss.legend(
        handles=[
            Line2D([], [], color="k", lw=1, label="train"),
            Line2D([], [], color="k", lw=1, ls="--", label="validation"),
            Line2D([], [], color="k", marker="o", ls="", ms=4, label="kept epoch"),
        ],
        fontsize="small",
    )
    fig.suptitle(title or f"{outcomes[0].model}: {len(outcomes)} fold(s)")
    fig.savefig(path, dpi=120)
    return path


def evaluate_gnn(
    model: ModelName,
    dataset: GraphDataset,
    results: Sequence[GraphResult] | None,
    folds: Sequence[Fold],
    *,
    seed: int,
    epochs: int = 200,
    out: str | Path,
    progress: bool = True,
    pe_dim: int = 8,
    pooling: TimePooling | None = "concat",
    label_observables: bool = False,
    name: str | None = None,
    **options: Any,
) -> tuple[ModelResult, Path]:
    """Run :func:`fit_evaluate_gnn` on every outer fold and plot the learning curves.

    Graphs are converted with :meth:`GraphDataset.to_pyg` (a constant node
    feature ``x = 1`` is added where the dataset has no node labels); quantum
    models get their features from ``results`` (aligned with ``dataset``,
    every one successful) through :func:`attach_quantum_features`. Fold ``k``
    of repeat ``r`` trains with seed ``seed + 1000·r + k`` for every model.

    With ``label_observables=True`` each fold's graphs also get ``g_q``
    (:func:`qgnn.features.label_observables_matrix`) over the label
    vocabulary of that fold's training graphs alone, so a label seen only in
    test graphs adds no column; the vocabulary is recorded in the fold's
    ``best_params["label_vocabulary"]`` (comma-separated).

    Args:
        model: ``"qgin"``, ``"qgps"`` or ``"gin"``.
        dataset: the graphs evaluated (``fold`` indices point into it).
        results: pipeline results aligned with ``dataset`` (``None`` for ``"gin"``).
        folds: outer folds from :func:`qgnn.evaluation.make_folds`.
        seed: base seed.
        epochs: maximum epochs per fold (default 200).
        out: folder of the learning-curve PNG ``<dataset>-<name>-learning-curves.png``.
        name: the name results and plots carry (default ``model``), e.g. ``"qgin-labels"``.
        progress: show a bar per epoch (default True).
        pe_dim: leading correlation eigenspaces in ``pe_q`` (default 8).
        pooling: evaluation times in every quantum feature: ``"concat"`` (default,
            or ``None``), ``"mean"`` or ``"last"`` (see :class:`QuantumFeatures`).
        label_observables: give quantum models the per-label observables ``g_q``
            (needs node labels; default False).
        **options: further :func:`fit_evaluate_gnn` keyword arguments (hidden, lr, ...).

    Returns:
        The :class:`~qgnn.evaluation.ModelResult` and the PNG path.
    """
    task = dataset.task
    pooling = _check_pooling(pooling)
    if model == "gin" and (label_observables or pooling != "concat"):
        raise InvalidInputError(
            "gin reads no quantum features: pooling and label_observables apply to qgin and qgps only"
        )
    if label_observables and dataset.num_node_labels is None:
        raise InvalidInputError(
            f"{dataset.name} has no node labels: label_observables needs a labelled dataset"
        )
    datas = pyg_graphs(dataset)
    if model != "gin":
        if results is None:
            raise InvalidInputError(f"{model} needs the pipeline results of the dataset's graphs")
        datas, failures = attach_quantum_features(datas, results, pe_dim=pe_dim, pooling=pooling)
        if failures:
            raise DatasetError(
                f"{model}: {len(failures)} graph(s) have no quantum features "
                f"({', '.join(graph_label(i) for i in sorted(failures)[:5])}): drop failed graphs before "
                "making folds, so that every model sees the same graphs"
            )
    num_classes = int(dataset.num_classes or 0)
    graphs = list(dataset) if label_observables else []

    def fit(fold: Fold) -> tuple[FoldOutcome, dict[str, Any]]:
        fold_datas, chosen = datas, {}
        if label_observables:
            assert results is not None
            fold_datas, vocabulary = _with_label_observables(datas, results, graphs, fold, pooling)
            chosen["label_vocabulary"] = ",".join(map(str, vocabulary))
        outcome = fit_evaluate_gnn(
            model,
            [fold_datas[i] for i in fold.train],
            [fold_datas[i] for i in fold.test],
            task=task,
            num_classes=num_classes,
            seed=fold_seed(seed, fold),
            epochs=epochs,
            progress=progress,
            **options,
        )
        return outcome, chosen

    return run_folds(name or model, dataset, folds, fit, out=out)


def fold_seed(seed: int, fold: Fold) -> int:
    """The seed of one outer fold, ``seed + 1000·repeat + fold``."""
    return seed + 1000 * fold.repeat + fold.fold


def pyg_graphs(dataset: GraphDataset) -> list[Data]:
    """:meth:`GraphDataset.to_pyg` with a constant node feature ``x = 1`` where a graph has no ``x``."""
    datas = dataset.to_pyg()
    for pos, data in enumerate(datas):
        if getattr(data, "x", None) is None:
            copy_ = copy.copy(data)
            copy_.x = torch.ones(int(data.num_nodes or 0), 1)
            datas[pos] = copy_
    return datas


def run_folds(
    name: str,
    dataset: GraphDataset,
    folds: Sequence[Fold],
    fit: Callable[[Fold], tuple[FoldOutcome, dict[str, Any]]],
    *,
    out: str | Path,
    progress: bool = False,
) -> tuple[ModelResult, Path]:
    """Run ``fit`` on every outer fold, score each fold and plot the learning curves.

    Each fold's record keeps the test metrics (:func:`qgnn.evaluation.score`),
    the predictions, and in ``best_params`` what ``fit`` chose besides the
    outcome, with the kept epoch (1-based ``best_epoch``) and ``epochs_run``.

    Args:
        name: the model name the result and the plot carry.
        dataset: the evaluated graphs (its ``task`` and ``name``).
        folds: the outer folds.
        fit: trains and tests one fold; returns its :class:`FoldOutcome` and chosen parameters.
        out: folder of the PNG ``<dataset>-<name>-learning-curves.png``.
        progress: show a bar over folds (default False).

    Returns:
        The :class:`~qgnn.evaluation.ModelResult` and the PNG path.
    """
    from qgnn.evaluation import FoldRecord, ModelResult, score

    records, outcomes = [], []
    for fold in tqdm(folds, desc=f"{name} folds", disable=not progress):
        outcome, chosen = fit(fold)
        outcomes.append(outcome)
        records.append(
            FoldRecord(
                repeat=fold.repeat,
                fold=fold.fold,
                metrics=score(outcome.y_true, outcome.y_pred, dataset.task),
                best_params={
                    **chosen,
                    "best_epoch": outcome.best_epoch + 1,
                    "epochs_run": outcome.epochs_run,
                },
                seconds=outcome.seconds,
                y_true=outcome.y_true.tolist(),
                y_pred=outcome.y_pred.tolist(),
            )
        )
    png = plot_learning_curves(
        outcomes, Path(out) / f"{dataset.name}-{name}-learning-curves.png", title=f"{dataset.name}: {name}"
    )
    return ModelResult(name, dataset.task, records), png


def _with_label_observables(
    datas: Sequence[Data],
    results: Sequence[GraphResult],
    graphs: Sequence[nx.Graph],
    fold: Fold,
    pooling: TimePooling,
) -> tuple[list[Data], tuple[Hashable, ...]]:
    """``datas`` copies with ``g_q`` over the vocabulary of ``fold``'s training graphs; that vocabulary."""
    vocabulary = label_vocabulary([graphs[i] for i in fold.train])
    matrix = label_observables_matrix(results, graphs, vocabulary, pooling=pooling)
    out = []
    for data, row in zip(datas, matrix, strict=True):
        copy_ = copy.copy(data)
        copy_[GRAPH_KEY] = torch.as_tensor(row, dtype=torch.float32).reshape(1, -1)
        out.append(copy_)
    return out, vocabulary

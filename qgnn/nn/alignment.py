"""Kernel-target alignment: the QEK kernel's pulse trained on a fold's training graphs (``qek-trained``).

:func:`fit_kernel_alignment` tunes a :class:`RydbergEvolution` (drive and
label weights) to maximise the centred kernel-target alignment
(:func:`kernel_target_alignment`) of the QEK kernel K = exp(−μ·JS) on a fold's
**training** graphs; the tuned pulse then featurises every graph and the fold
is scored by the usual QEK-SVM (μ and C tuned by inner CV on the training
graphs, :class:`qgnn.evaluation.KernelModels`). :func:`qek_trained_source` is
the per-fold Gram source, :func:`qek_trained_gram` its ``qgnn train`` entry.

Every fold's learned pulse is written to one JSON file and overlaid in one
plot (Ω(t), δ(t), label weights; :func:`save_pulses`, :func:`pulse_files`);
:func:`fresh_layer` and :func:`save_pulses` also serve the end-to-end model of
:mod:`qgnn.nn.qegnn`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from qgnn.errors import InvalidInputError
from qgnn.nn.rydberg import AtomGraph, RydbergEvolution, plot_pulse, write_pulse
from qgnn.nn.training import fold_seed

if TYPE_CHECKING:
    from qgnn.evaluation import Fold


# ----------------------------------------------------------------------------- kernel-target alignment


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


# ----------------------------------------------------------------------------- per-fold layer and pulse files


def _dataset_labels(graphs: Sequence[Any], attribute: str) -> list[Hashable] | None:
    """The sorted values of ``attribute`` over every node, or ``None`` if some node lacks it."""
    values: set[Hashable] = set()
    for g in graphs:
        for _, attrs in g.nodes(data=True):
            if attribute not in attrs:
                return None
            values.add(attrs[attribute])
    return sorted(values, key=repr) if values else None


def fresh_layer(graphs: Sequence[Any], options: dict[str, Any]) -> RydbergEvolution:
    """A new :class:`RydbergEvolution` with ``options``, and DMM weights for the node labels of ``graphs``.

    The labels are every node's ``options["attribute"]`` (default ``"label"``)
    unless ``options`` gives ``labels``; none when some node lacks it.
    """
    options = dict(options)
    if "labels" not in options:
        options["labels"] = _dataset_labels(graphs, options.get("attribute", "label"))
    return RydbergEvolution(**options)


def save_pulses(pulses: list[dict[str, Any]], out: Path, stem: str, title: str) -> list[Path]:
    """Write every fold's pulse to ``<out>/<stem>-pulses.json`` and overlay them in ``-pulses.png``.

    Args:
        pulses: one dict per fold with its ``"pulse"`` (:meth:`RydbergEvolution.pulse_values`).
        out: output folder.
        stem: file-name stem (``<dataset>-<model>``).
        title: title of the plot.

    Returns:
        The JSON and PNG paths (:func:`pulse_files`).
    """
    json_path = write_pulse({"folds": pulses}, out / f"{stem}-pulses.json")
    return [json_path, plot_pulse([p["pulse"] for p in pulses], out / f"{stem}-pulses.png", title=title)]


def pulse_files(dataset_name: str, name: str, out: str | Path) -> list[Path]:
    """The JSON and PNG where :func:`save_pulses` writes the pulses of ``<dataset_name>-<name>``."""
    stem = Path(out) / f"{dataset_name}-{name}-pulses"
    return [stem.with_suffix(".json"), stem.with_suffix(".png")]


# ----------------------------------------------------------------------------- the qek-trained model


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
    :func:`~qgnn.nn.training.fold_seed`) is tuned by
    :func:`fit_kernel_alignment` on the fold's **training** graphs only;
    every graph is then evolved under the tuned
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
            layer = fresh_layer(graphs, layer_options)
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
        save_pulses(pulses, Path(out), f"{dataset_name}-{name}", f"{dataset_name}: {name} pulses")
        tag = (
            ("alignment_before", round(fit.alignment[0], 4)),
            ("alignment_after", round(fit.alignment[-1], 4)),
        )
        return {(*tag, *params): gram for params, gram in qek_family(X).items()}

    return source


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

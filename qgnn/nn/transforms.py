"""Quantum features as a PyTorch Geometric transform.

:class:`QuantumFeatures` runs a graph through a :class:`~qgnn.features.FeaturePipeline`
(embedding → pulses → backend) and attaches what the atoms measured to a copy
of the :class:`~torch_geometric.data.Data`:

- ``x_q`` (``n × T``): ⟨n_i⟩ at each of the pipeline's ``T`` evaluation times;
- ``pe_q`` (``n × T·(5 + pe_dim)``): quantum positional encodings built from the
  connected correlations ``C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩`` (see
  :func:`correlation_encodings`);
- ``edge_attr_q`` (``E × T``): ``C_ij`` on each edge of ``edge_index``;
- ``hist_q`` (``1 × T·L``): the excitation-count distribution P(k), k = 0..L−1,
  padded with zeros to ``L = hist_length``, one row per graph so that batches
  stack it to ``B × T·L``;
- ``g_q`` (``1 × 2·V·T``, only with a ``label_vocabulary`` of ``V`` labels):
  per-label observables, the mean and the sum of ⟨n_i⟩ over the atoms of each
  label (:func:`qgnn.features.label_observables`), one row per graph;
- ``q_ok`` (``1``, bool): ``False`` when the graph could not be featurised; its
  quantum features are then zeros and the reason is in ``transform.failures``.

The widths above keep every time (``pooling="concat"``, the default: one
block per time, time-major). ``pooling="mean"`` averages each feature over
the times and ``"last"`` keeps the latest time (:func:`qgnn.features.pool_times`),
so every ``T`` above becomes 1.

With ``canonical=True`` (default) each graph is measured in its canonical node
order and the moments ⟨n_i⟩, ⟨n_i n_j⟩ are averaged over the graph's
automorphisms (:mod:`qgnn.data.canonical`) before ``C`` is formed, so relabelling
a graph's nodes permutes ``x_q``, ``pe_q`` and ``edge_attr_q`` accordingly and
leaves ``hist_q`` unchanged, and equivalent nodes get equal features.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from qgnn.data import from_pyg
from qgnn.data.canonical import canonical_form, canonical_relabel, orbit_average
from qgnn.data.convert import data_index
from qgnn.errors import InvalidGraphError, InvalidInputError, QgnnError, format_failures, graph_label
from qgnn.features import (
    TIME_POOLINGS,
    FeaturePipeline,
    GraphResult,
    excitation_histogram,
    label_observables,
    node_correlations,
    node_occupations,
    pool_times,
)
from qgnn.features.maps import TimePooling

#: Number of per-node row statistics of ``C`` in each time block of ``pe_q``.
ROW_STATISTICS = 5


class QuantumFeatureWarning(UserWarning):
    """Some graphs could not be featurised; they carry ``q_ok=False`` and zero quantum features."""


def correlation_encodings(corr: np.ndarray, k: int, *, degeneracy_tol: float = 1e-6) -> np.ndarray:
    """Permutation-equivariant, sign-invariant node encodings of one correlation matrix.

    For the connected correlation matrix ``C`` (``n × n``, symmetric) the row of
    node ``i`` is::

        [ Σ_{j≠i} C_ij,  Σ_{j≠i} |C_ij|,  max_{j≠i} C_ij,  min_{j≠i} C_ij,  C_ii,
          P⁽¹⁾_ii, …, P⁽ᵏ⁾_ii ]

    where ``P⁽ˢ⁾ = Σ_{m: |λ_m − λ_s| ≤ tol} v_m v_mᵀ`` is the projector onto the
    eigenspace of the ``s``-th largest eigenvalue ``λ_s`` of ``C``. For a simple
    eigenvalue ``P⁽ˢ⁾_ii = v_s,i²`` (invariant under ``v → −v``); for a degenerate
    one it is the basis-independent diagonal of the eigenspace projector, so the
    encoding does not depend on the arbitrary basis ``eigh`` picks inside it.
    Slots beyond ``n`` are zero. Relabelling the nodes by a permutation ``π``
    permutes the rows by ``π``. Caveat: eigenvalues closer than ``tol`` are
    merged, and a nearly degenerate pair (gap just above ``tol``) makes the
    eigen part sensitive to noise; the row statistics have no such issue.

    Args:
        corr: connected correlations ``C``, shape ``(n, n)``.
        k: number of leading eigenspaces to encode.
        degeneracy_tol: absolute gap below which eigenvalues count as equal.

    Returns:
        Array of shape ``(n, 5 + k)``.

    Example:
        >>> import numpy as np
        >>> c = np.array([[0.2, -0.1], [-0.1, 0.2]])
        >>> correlation_encodings(c, 2).round(3).tolist()[0]
        [-0.1, 0.1, -0.1, -0.1, 0.2, 0.5, 0.5]
    """
    c = np.asarray(corr, dtype=np.float64)
    n = c.shape[0]
    out = np.zeros((n, ROW_STATISTICS + k), dtype=np.float64)
    if n == 0:
        return out
    off = ~np.eye(n, dtype=bool)
    if n > 1:
        offdiag = np.where(off, c, 0.0)
        out[:, 0] = offdiag.sum(axis=1)
        out[:, 1] = np.abs(offdiag).sum(axis=1)
        out[:, 2] = np.where(off, c, -np.inf).max(axis=1)
        out[:, 3] = np.where(off, c, np.inf).min(axis=1)
    out[:, 4] = np.diag(c)
    evals, evecs = np.linalg.eigh((c + c.T) / 2)
    order = np.argsort(-evals, kind="stable")
    evals, evecs = evals[order], evecs[:, order]
    for s in range(min(k, n)):
        members = np.abs(evals - evals[s]) <= degeneracy_tol
        out[:, ROW_STATISTICS + s] = (evecs[:, members] ** 2).sum(axis=1)
    return out


@dataclass(frozen=True)
class _NodeView:
    """Where a Data's nodes sit in the graph the pipeline measured, and that graph's automorphisms."""

    nodes: tuple[int, ...]
    generators: tuple[tuple[int, ...], ...]


class QuantumFeatures(BaseTransform):
    r"""Attach neutral-atom quantum features to a graph (never mutates its input).

    Each graph is converted to networkx (:func:`qgnn.data.from_pyg`), embedded,
    driven and measured by ``pipeline`` (whose cache is shared with every other
    user of the pipeline), and the copy returned carries ``x_q``, ``pe_q``,
    ``edge_attr_q``, ``hist_q`` and ``q_ok`` (see the module docstring):

    .. math::
        x_q[i, t] = \langle n_i \rangle_t, \quad
        C^t_{ij} = \langle n_i n_j \rangle_t - \langle n_i \rangle_t \langle n_j \rangle_t, \quad
        \text{edge\_attr\_q}[(i,j), t] = C^t_{ij}, \quad
        \text{hist\_q}[t L + k] = P_t(k \text{ excitations}).

    ``pe_q`` concatenates :func:`correlation_encodings` of ``C^t`` over the
    times ``t``. With ``pooling="mean"`` every attribute is instead the mean
    over ``t`` of its per-time block (e.g. :math:`x_q[i] = \frac{1}{T}\sum_t
    \langle n_i \rangle_t`). With a ``label_vocabulary`` the copy also carries
    the graph-level

    .. math::
        g_q = \big[\bar n_{l_1}, \dots, \bar n_{l_V},\; S_{l_1}, \dots, S_{l_V}\big], \quad
        S_l = \sum_{i:\, \text{label}_i = l} \langle n_i \rangle, \quad
        \bar n_l = S_l / |\{i: \text{label}_i = l\}|

    (0 for a label the graph lacks; labels outside the vocabulary are ignored),
    one such block per time with ``"concat"``. Node labels are read as
    :func:`qgnn.data.from_pyg` reads them (``data.node_label``, else a one-hot
    ``data.x``). A graph the pipeline cannot handle (not embeddable, backend
    error, too large for ``hist_length``) gets ``q_ok = False``, zero quantum
    features, and an entry ``failures[index] = reason`` keyed by its ``idx``
    attribute (or, without one, by the number of graphs this transform saw
    before it). Nothing is dropped.

    Args:
        pipeline: the :class:`~qgnn.features.FeaturePipeline` that measures graphs.
        pe_dim: number of leading correlation eigenspaces in ``pe_q`` (default 8).
        hist_length: padded length ``L`` of the excitation histogram per time;
            ``None`` (default) uses ``n + 1`` of the largest graph of each
            :meth:`featurise` call (and of the graph itself in ``forward``) —
            set it explicitly to batch graphs transformed one at a time.
        degeneracy_tol: eigenvalue gap below which eigenspaces merge (default 1e-6).
        canonical: send each graph to the pipeline in its canonical node order
            (:mod:`qgnn.data.canonical`), so that the features do not depend on
            how the nodes are numbered (default True). The embedding optimiser
            is not relabelling-equivariant: without this, relabelling a graph
            gives another register and other features.
        pooling: how the evaluation times are combined in every attribute:
            ``"concat"`` (default; ``None`` means the same) keeps one block per
            time, ``"mean"`` averages over the times, ``"last"`` keeps the last.
        label_vocabulary: node label values (codes, as in ``data.node_label``)
            whose per-label observables form ``g_q``; ``None`` (default) attaches
            no ``g_q``. Take it from the training graphs only
            (:func:`qgnn.features.label_vocabulary`), never from test graphs.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> from qgnn.features import FeaturePipeline
        >>> ring = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0],
        ...                      [1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 0, 5]])
        >>> qf = QuantumFeatures(FeaturePipeline(progress=False), hist_length=8)
        >>> out = qf(Data(x=torch.ones(6, 1), edge_index=ring))
        >>> out.x_q.shape, out.pe_q.shape, out.edge_attr_q.shape, out.hist_q.shape
        (torch.Size([6, 1]), torch.Size([6, 13]), torch.Size([12, 1]), torch.Size([1, 8]))
        >>> labelled = QuantumFeatures(qf.pipeline, hist_length=8, label_vocabulary=[0, 1])
        >>> labelled(Data(x=torch.ones(6, 1), edge_index=ring)).g_q.shape  # 1-wide one-hot x: label 0
        torch.Size([1, 4])
    """

    def __init__(
        self,
        pipeline: FeaturePipeline,
        *,
        pe_dim: int = 8,
        hist_length: int | None = None,
        degeneracy_tol: float = 1e-6,
        canonical: bool = True,
        pooling: TimePooling | None = "concat",
        label_vocabulary: Sequence[Hashable] | None = None,
    ) -> None:
        if isinstance(pe_dim, bool) or not isinstance(pe_dim, int) or pe_dim < 0:
            raise InvalidInputError(f"pe_dim must be a non-negative integer, got {pe_dim!r}")
        if hist_length is not None and (
            isinstance(hist_length, bool) or not isinstance(hist_length, int) or hist_length < 2
        ):
            raise InvalidInputError(f"hist_length must be an integer ≥ 2 or None, got {hist_length!r}")
        if not (degeneracy_tol >= 0.0 and np.isfinite(degeneracy_tol)):
            raise InvalidInputError(f"degeneracy_tol must be a finite number ≥ 0, got {degeneracy_tol!r}")
        self.pipeline = pipeline
        self.pe_dim = pe_dim
        self.hist_length = hist_length
        self.degeneracy_tol = float(degeneracy_tol)
        self.canonical = bool(canonical)
        self.pooling: TimePooling = _check_pooling(pooling)
        self.label_vocabulary = _check_vocabulary(label_vocabulary)
        self.failures: dict[int, str] = {}
        self._seen = 0

    @property
    def n_times(self) -> int:
        """Number of evaluation times ``T`` of the pipeline."""
        return len(tuple(self.pipeline.evaluation_times))

    @property
    def q_channels(self) -> int:
        """Width of ``x_q``: ``T`` with ``pooling="concat"``, else 1."""
        return self.n_times if self.pooling == "concat" else 1

    @property
    def pe_channels(self) -> int:
        """Width of ``pe_q``: ``q_channels · (5 + pe_dim)``."""
        return self.q_channels * (ROW_STATISTICS + self.pe_dim)

    @property
    def graph_dim(self) -> int | None:
        """Width of ``g_q``: ``2 · V · q_channels``, or ``None`` without a label vocabulary."""
        if self.label_vocabulary is None:
            return None
        return 2 * len(self.label_vocabulary) * self.q_channels

    def forward(self, data: Any) -> Data:
        """Return a copy of ``data`` with the quantum features attached."""
        return self.featurise([data])[0]

    def featurise(self, data_list: Sequence[Data]) -> list[Data]:
        """Featurise many graphs with one :meth:`FeaturePipeline.run` call (workers, progress bar).

        Args:
            data_list: graphs; each is copied, never modified.

        Returns:
            New Data objects, in input order, each with the quantum attributes.
        """
        datas = _check_datas(data_list)
        keys = [self._seen + pos if i is None else i for pos, i in enumerate(map(data_index, datas))]
        self._seen += len(datas)
        graphs: list[nx.Graph | None] = []
        views: list[_NodeView] = []
        reasons: dict[int, str] = {}
        for pos, data in enumerate(datas):
            try:
                graph = from_pyg(data)
            except QgnnError as exc:
                graphs.append(None)
                views.append(_NodeView((), ()))
                reasons[pos] = f"cannot convert to networkx: {exc}"
                continue
            if self.canonical:
                form = canonical_form(graph)
                graph, mapping = canonical_relabel(graph, form)
                views.append(_NodeView(tuple(mapping[v] for v in range(len(mapping))), form.generators))
            else:
                views.append(_NodeView(tuple(range(graph.number_of_nodes())), ()))
            graphs.append(graph)
        todo = [g for g in graphs if g is not None]
        ran = iter(self.pipeline.run(todo) if todo else [])
        results = [next(ran) if g is not None else None for g in graphs]
        out, failures = _attach_all(
            datas,
            keys,
            results,
            reasons,
            views,
            n_times=self.n_times,
            pe_dim=self.pe_dim,
            hist_length=self.hist_length,
            degeneracy_tol=self.degeneracy_tol,
            pooling=self.pooling,
            graphs=graphs if self.label_vocabulary is not None else None,
            vocabulary=self.label_vocabulary,
        )
        self.failures.update(failures)
        return out

    def __repr__(self) -> str:
        # Offline and cheap: PyG calls this when saving a dataset, and the pipeline's
        # fingerprint needs its device, which a cloud backend fetches over the network.
        # The newer options are shown only when they change the features, so datasets
        # processed before they existed keep a matching pre_transform repr.
        pipeline = self.pipeline
        backend = getattr(pipeline.backend, "name", type(pipeline.backend).__qualname__)
        extra = "" if self.pooling == "concat" else f", pooling={self.pooling!r}"
        if self.label_vocabulary is not None:
            extra += f", label_vocabulary={self.label_vocabulary!r}"
        return (
            f"{self.__class__.__name__}(backend={backend!r}, schedule={pipeline.schedule!r}, "
            f"evaluation_times={tuple(pipeline.evaluation_times)}, shots={pipeline.shots}, "
            f"pe_dim={self.pe_dim}, hist_length={self.hist_length}, "
            f"degeneracy_tol={self.degeneracy_tol}, canonical={self.canonical}{extra})"
        )


def _check_pooling(pooling: object) -> TimePooling:
    if pooling is None:
        return "concat"
    if pooling not in TIME_POOLINGS:
        raise InvalidInputError(f"pooling must be one of {TIME_POOLINGS} or None, got {pooling!r}")
    return pooling  # type: ignore[return-value]


def _check_vocabulary(vocabulary: Sequence[Hashable] | None) -> tuple[Hashable, ...] | None:
    """The vocabulary as a tuple of distinct plain values (numpy scalars → Python), in the given order."""
    if vocabulary is None:
        return None
    not_a_sequence = isinstance(vocabulary, str | bytes | set | frozenset | Mapping)
    if not_a_sequence or not isinstance(vocabulary, Iterable):
        raise InvalidInputError(
            "label_vocabulary must be an ordered sequence of node label values (its order is the "
            f"column order of g_q), got {type(vocabulary).__name__}"
        )
    values = tuple(v.item() if isinstance(v, np.generic) else v for v in vocabulary)
    if not values:
        raise InvalidInputError("label_vocabulary is empty: pass the training graphs' labels, or None")
    try:
        distinct = len(set(values))
    except TypeError as exc:
        raise InvalidInputError(f"label_vocabulary values must be hashable: {exc}") from exc
    if distinct != len(values):
        raise InvalidInputError(f"label_vocabulary has repeated values: {values!r}")
    return values


def attach_quantum_features(
    data_list: Sequence[Data],
    results: Sequence[GraphResult],
    *,
    pe_dim: int = 8,
    hist_length: int | None = None,
    degeneracy_tol: float = 1e-6,
    pooling: TimePooling | None = "concat",
) -> tuple[list[Data], dict[int, str]]:
    """Attach quantum features from results a :class:`FeaturePipeline` already computed.

    The same attributes as :class:`QuantumFeatures`, without running anything:
    use it when the pipeline results exist (e.g. shared with a kernel model).

    Args:
        data_list: graphs, aligned with ``results`` (same order, same nodes).
        results: one :class:`GraphResult` per graph.
        pe_dim: leading correlation eigenspaces in ``pe_q`` (default 8).
        hist_length: padded histogram length (default: largest graph + 1).
        degeneracy_tol: eigenvalue gap below which eigenspaces merge (default 1e-6).
        pooling: ``"concat"`` (default, or ``None``), ``"mean"`` or ``"last"`` over
            the evaluation times, as in :class:`QuantumFeatures`.

    Returns:
        The new Data objects and the failures (index → reason).
    """
    pooling = _check_pooling(pooling)
    datas = _check_datas(data_list)
    results = list(results)
    if len(results) != len(datas):
        raise InvalidInputError(f"{len(datas)} graphs but {len(results)} results: they must be aligned")
    times = {len(r.measurement.evaluation_times) for r in results if r.measurement is not None}
    if len(times) > 1:
        raise InvalidInputError(f"results mix different numbers of evaluation times {sorted(times)}")
    keys = []
    for pos, (data, result) in enumerate(zip(datas, results, strict=True)):
        index = data_index(data)
        if index is not None and result.index != index:
            raise InvalidGraphError(
                f"position {pos}: the Data is {graph_label(index)} but the result is for "
                f"{graph_label(result.index)}: align data_list and results"
            )
        keys.append(pos if index is None else index)
    return _attach_all(
        datas,
        keys,
        results,
        {},
        [_NodeView(tuple(range(int(d.num_nodes or 0))), ()) for d in datas],
        n_times=times.pop() if times else 1,
        pe_dim=pe_dim,
        hist_length=hist_length,
        degeneracy_tol=degeneracy_tol,
        pooling=pooling,
    )


def _check_datas(data_list: Sequence[Data]) -> list[Data]:
    datas = list(data_list)
    for pos, data in enumerate(datas):
        if not isinstance(data, Data):
            raise InvalidGraphError(
                f"expected torch_geometric.data.Data, got {type(data).__name__} at position {pos}"
            )
    return datas


def _attach_all(
    datas: Sequence[Data],
    keys: Sequence[int],
    results: Sequence[GraphResult | None],
    reasons: dict[int, str],
    views: Sequence[_NodeView],
    *,
    n_times: int,
    pe_dim: int,
    hist_length: int | None,
    degeneracy_tol: float,
    pooling: TimePooling,
    graphs: Sequence[nx.Graph | None] | None = None,
    vocabulary: tuple[Hashable, ...] | None = None,
) -> tuple[list[Data], dict[int, str]]:
    """Features of every graph; ``graphs`` (what the pipeline measured, with labels) for ``g_q``."""
    length = hist_length or max((int(d.num_nodes or 0) for d in datas), default=0) + 1
    blocks = n_times if pooling == "concat" else 1
    out, failures = [], {}
    for pos, (data, key, result, view) in enumerate(zip(datas, keys, results, views, strict=True)):
        reason = reasons.get(pos)
        features = None
        if reason is None and result is not None and not result.ok:
            reason = result.error or "the pipeline returned no measurement"
        if reason is None and result is not None:
            try:
                computed = _features(data, result, view, length, pe_dim, degeneracy_tol, pooling)
                graph = None if graphs is None else graphs[pos]
                if vocabulary is not None and graph is not None:
                    g = label_observables(result, graph, vocabulary, pooling=pooling)
                    computed["g_q"] = torch.as_tensor(g, dtype=torch.float32).reshape(1, -1)
                features = computed
            except QgnnError as exc:
                reason = str(exc)
        ok = features is not None
        if features is None:
            failures[key] = reason or "no result"
            features = _zeros(data, length, blocks, pe_dim, vocabulary)
        copy_ = copy.copy(data)
        for name, value in features.items():
            copy_[name] = value
        copy_.q_ok = torch.tensor([ok])
        out.append(copy_)
    return out, failures


def _pooled(values: np.ndarray, pooling: TimePooling) -> torch.Tensor:
    """``(T, rows, F)`` → ``(rows, T·F)`` one block per time (``"concat"``), else ``(rows, F)``."""
    pooled = pool_times(values, pooling)
    if pooling == "concat":
        pooled = np.swapaxes(pooled, -1, -2)  # (rows, F, T) → (rows, T, F): time-major blocks
    width = values.shape[2] * (values.shape[0] if pooling == "concat" else 1)
    return torch.as_tensor(pooled.reshape(values.shape[1], width), dtype=torch.float32)


def _features(
    data: Data,
    result: GraphResult,
    view: _NodeView,
    length: int,
    pe_dim: int,
    degeneracy_tol: float,
    pooling: TimePooling,
) -> dict[str, torch.Tensor]:
    """Quantum attributes of ``data``; row ``i`` is the result's graph node ``view.nodes[i]``."""
    n = int(data.num_nodes or 0)
    if n != result.n_nodes or len(view.nodes) != n:
        raise InvalidGraphError(
            f"{graph_label(result.index)}: the Data has {n} nodes but the result {result.n_nodes} atoms"
        )
    if n > length - 1:
        raise InvalidGraphError(
            f"{graph_label(result.index)} has {n} nodes but hist_length={length} holds at most "
            f"{length - 1} excitations: raise hist_length"
        )
    every = list(range(n))
    occ = np.asarray(node_occupations(result, every), dtype=np.float64).T
    pair = np.asarray(node_correlations(result, every, connected=False), dtype=np.float64)
    occ, pair = orbit_average(occ, pair, view.generators)
    rows = np.asarray(view.nodes, dtype=np.int64)
    occ, pair = occ[:, rows], pair[:, rows][:, :, rows]
    corr = pair - occ[:, :, None] * occ[:, None, :]
    hist = np.asarray(excitation_histogram(result, length), dtype=np.float64)
    pe = np.stack([correlation_encodings(c, pe_dim, degeneracy_tol=degeneracy_tol) for c in corr])
    edge_index = data.edge_index
    if edge_index is None or edge_index.numel() == 0:
        edge_q = np.zeros((corr.shape[0], 0))
    else:
        src, dst = edge_index.cpu().numpy()
        edge_q = corr[:, src, dst]
    return {
        "x_q": _pooled(occ[:, :, None], pooling),
        "pe_q": _pooled(pe, pooling),
        "edge_attr_q": _pooled(edge_q[:, :, None], pooling),
        "hist_q": _pooled(hist[:, None, :], pooling),
    }


def _zeros(
    data: Data, length: int, blocks: int, pe_dim: int, vocabulary: tuple[Hashable, ...] | None
) -> dict[str, torch.Tensor]:
    """Zero features of a failed graph; ``blocks`` is T (``"concat"``) or 1."""
    n = int(data.num_nodes or 0)
    e = 0 if data.edge_index is None else int(data.edge_index.size(1))
    zeros = {
        "x_q": torch.zeros(n, blocks),
        "pe_q": torch.zeros(n, blocks * (ROW_STATISTICS + pe_dim)),
        "edge_attr_q": torch.zeros(e, blocks),
        "hist_q": torch.zeros(1, blocks * length),
    }
    if vocabulary is not None:
        zeros["g_q"] = torch.zeros(1, blocks * 2 * len(vocabulary))
    return zeros


EDGE_KEYS: tuple[str, ...] = ("edge_attr", "edge_label")


def fill_edgeless(datas: Sequence[Data]) -> list[Data]:
    """Give edgeless graphs empty ``edge_attr``/``edge_label`` when other graphs have them, so all batch.

    :func:`qgnn.data.to_pyg` sets these only for graphs with edges; PyG can
    only collate graphs that share their attributes.
    """
    templates = {}
    for key in EDGE_KEYS:
        template = next((d[key] for d in datas if isinstance(getattr(d, key, None), torch.Tensor)), None)
        if template is not None:
            templates[key] = template
    out = []
    for data in datas:
        missing = [k for k in templates if getattr(data, k, None) is None]
        if missing and (data.edge_index is None or data.edge_index.numel() == 0):
            data = copy.copy(data)
            for key in missing:
                data[key] = templates[key].new_zeros((0, *templates[key].shape[1:]))
        out.append(data)
    return out


def failure_message(failures: dict[int, str], where: str) -> str:
    """One line per failed graph: ``graph 17: reason``, headed by a count."""
    return (
        f"{where}: {len(failures)} graph(s) could not be featurised; they are kept with q_ok=False and "
        "zero quantum features (filter them with data.q_ok):\n"
        + format_failures(dict(sorted(failures.items())), 20)
    )

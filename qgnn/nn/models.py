"""Graph neural networks reading quantum features: QuantumGIN, QuantumGPS and a GIN baseline.

All three share one recipe so that comparisons isolate the quantum inputs:
``layers`` message-passing layers of width ``hidden`` with BatchNorm and ReLU,
a readout that sums each layer's node states per graph and concatenates the
layers (GIN's jumping-knowledge readout), and an MLP head. The quantum models
append graph-level quantum inputs to that readout before the head: the
excitation histogram ``hist_q`` always, and the per-label observables ``g_q``
when built with ``graph_dim``. Classification models return logits
``(B, out_channels)``; regression models return ``(B,)``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import BatchNorm, GINConv, GINEConv, GPSConv, global_add_pool

from qgnn.errors import InvalidGraphError, InvalidInputError

Task = Literal["classification", "regression"]


def _norm(channels: int) -> BatchNorm:
    """Batch normalisation over the nodes of a batch; a one-node batch is normalised with running stats.

    Not LayerNorm: normalising each node's feature vector would erase the
    neighbour counts that GIN's sum aggregation carries in its magnitude.
    """
    return BatchNorm(channels, allow_single_element=True)


def _mlp(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """Linear → BatchNorm → ReLU → Linear (the first module exposes ``in_features`` for GINEConv)."""
    return nn.Sequential(
        nn.Linear(in_channels, hidden), _norm(hidden), nn.ReLU(), nn.Linear(hidden, out_channels)
    )


def _check(task: str, out_channels: int, hidden: int, layers: int) -> None:
    if task not in ("classification", "regression"):
        raise InvalidInputError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "regression" and out_channels != 1:
        raise InvalidInputError(f"a regression model has out_channels=1, got {out_channels}")
    if task == "classification" and out_channels < 2:
        raise InvalidInputError(f"a classifier needs out_channels ≥ 2 classes, got {out_channels}")
    if hidden < 1 or layers < 1:
        raise InvalidInputError(f"hidden and layers must be ≥ 1, got hidden={hidden}, layers={layers}")


def _require(batch: Batch, key: str, width: int, model: str) -> Tensor:
    value = getattr(batch, key, None)
    if not isinstance(value, Tensor):
        hint = " (apply qgnn.nn.QuantumFeatures first)" if key.endswith("_q") else ""
        if key == "g_q":
            hint = " (apply qgnn.nn.QuantumFeatures with a label_vocabulary, or build without graph_dim)"
        raise InvalidGraphError(f"{model} needs data.{key}{hint}")
    if value.dim() != 2 or value.size(1) != width:
        raise InvalidGraphError(
            f"{model} was built for data.{key} of width {width}, got shape {tuple(value.shape)}"
        )
    return value.float()


class _Head(nn.Module):
    def __init__(self, in_channels: int, hidden: int, out_channels: int, dropout: float, task: Task):
        super().__init__()
        self.task = task
        self.net = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_channels)
        )

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(z)
        return out.squeeze(-1) if self.task == "regression" else out


class _GINEncoder(nn.Module):
    """``layers`` GIN (GINE with ``edge_channels``) layers; returns per-layer sum readouts, concatenated."""

    def __init__(self, in_channels: int, hidden: int, layers: int, edge_channels: int | None):
        super().__init__()
        self.edge_channels = edge_channels
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(layers):
            mlp = _mlp(in_channels if layer == 0 else hidden, hidden, hidden)
            conv: nn.Module = GINConv(mlp) if edge_channels is None else GINEConv(mlp, edge_dim=edge_channels)
            self.convs.append(conv)
            self.norms.append(_norm(hidden))

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None, batch: Tensor, size: int
    ) -> Tensor:
        pooled = []
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = conv(x, edge_index) if self.edge_channels is None else conv(x, edge_index, edge_attr)
            x = torch.relu(norm(x))
            pooled.append(global_add_pool(x, batch, size=size))
        return torch.cat(pooled, dim=-1)


def _graph_batch(batch: Batch) -> tuple[Tensor, int]:
    vector = batch.batch
    if vector is None:
        return torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.edge_index.device), 1
    return vector, int(batch.num_graphs)


class GIN(nn.Module):
    r"""GIN / GINE baseline on the original node (and edge) features only.

    Layer ``l``: :math:`h_i^{l+1} = \mathrm{ReLU}(\mathrm{BN}(\mathrm{MLP}((1+\epsilon) h_i^l +
    \sum_{j \in N(i)} \mathrm{ReLU}(h_j^l + W e_{ij}))))` (the edge term only with
    ``edge_dim``); readout :math:`z = \Vert_l \sum_i h_i^l`; output
    :math:`\mathrm{MLP}(z)`.

    Args:
        in_channels: width of ``data.x`` (e.g. one-hot atom labels).
        out_channels: number of classes (classification) or 1 (regression).
        edge_dim: width of ``data.edge_attr`` to use (GINE), or ``None`` (GIN).
        hidden: hidden width (default 64).
        layers: message-passing layers (default 3).
        dropout: dropout before the last linear layer (default 0).
        task: ``"classification"`` (logits ``(B, C)``) or ``"regression"`` (``(B,)``).

    Example:
        >>> import torch
        >>> from torch_geometric.data import Batch, Data
        >>> g = Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
        >>> GIN(1, 2)(Batch.from_data_list([g, g])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        edge_dim: int | None = None,
        hidden: int = 64,
        layers: int = 3,
        dropout: float = 0.0,
        task: Task = "classification",
    ) -> None:
        super().__init__()
        _check(task, out_channels, hidden, layers)
        self.in_channels, self.edge_dim, self.task = in_channels, edge_dim, task
        self.encoder = _GINEncoder(in_channels, hidden, layers, edge_dim)
        self.head = _Head(layers * hidden, hidden, out_channels, dropout, task)

    def forward(self, batch: Batch) -> Tensor:
        """Logits ``(B, C)`` or regression values ``(B,)`` for a PyG batch."""
        x = _require(batch, "x", self.in_channels, "GIN")
        edge = None if self.edge_dim is None else _require(batch, "edge_attr", self.edge_dim, "GIN")
        vector, size = _graph_batch(batch)
        return self.head(self.encoder(x, batch.edge_index, edge, vector, size))


class QuantumGIN(nn.Module):
    r"""GIN / GINE on ``[x ‖ x_q ‖ pe_q]`` with the excitation histogram (and ``g_q``) in the readout.

    Node input :math:`h_i^0 = x_i \Vert x_{q,i} \Vert pe_{q,i}`; edge input
    :math:`e_{ij} = \text{edge\_attr}_{ij} \Vert C_{ij}` (each part optional);
    GIN(E) layers as in :class:`GIN`; output
    :math:`\mathrm{MLP}(\Vert_l \sum_i h_i^l \,\Vert\, \text{hist\_q} \,\Vert\, g_q)`
    (:math:`g_q` only with ``graph_dim``).

    Args:
        in_channels: width of ``data.x``.
        q_channels: width of ``data.x_q`` (number of evaluation times ``T``).
        pe_channels: width of ``data.pe_q`` (``T·(5 + pe_dim)``).
        hist_channels: width of ``data.hist_q`` (``T·hist_length``).
        out_channels: number of classes (classification) or 1 (regression).
        edge_dim: width of ``data.edge_attr`` to use, or ``None``.
        q_edge_dim: width of ``data.edge_attr_q`` (``T``) to use, or ``None``.
        graph_dim: width of the graph-level ``data.g_q`` (per-label observables,
            ``QuantumFeatures(label_vocabulary=...)``) to use, or ``None``.
        hidden: hidden width (default 64).
        layers: message-passing layers (default 3).
        dropout: dropout before the last linear layer (default 0).
        task: ``"classification"`` or ``"regression"``.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Batch, Data
        >>> g = Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
        ...          x_q=torch.rand(3, 1), pe_q=torch.rand(3, 13), edge_attr_q=torch.rand(4, 1),
        ...          hist_q=torch.rand(1, 4))
        >>> QuantumGIN(1, 1, 13, 4, 2, q_edge_dim=1)(Batch.from_data_list([g, g])).shape
        torch.Size([2, 2])
        >>> g.g_q = torch.rand(1, 6)  # per-label observables of 3 labels
        >>> QuantumGIN(1, 1, 13, 4, 2, graph_dim=6)(Batch.from_data_list([g, g])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        in_channels: int,
        q_channels: int,
        pe_channels: int,
        hist_channels: int,
        out_channels: int,
        *,
        edge_dim: int | None = None,
        q_edge_dim: int | None = None,
        graph_dim: int | None = None,
        hidden: int = 64,
        layers: int = 3,
        dropout: float = 0.0,
        task: Task = "classification",
    ) -> None:
        super().__init__()
        _check(task, out_channels, hidden, layers)
        self.widths = _widths(in_channels, q_channels, pe_channels, hist_channels, graph_dim)
        self.edge_dim, self.q_edge_dim, self.graph_dim, self.task = edge_dim, q_edge_dim, graph_dim, task
        edge_channels = (edge_dim or 0) + (q_edge_dim or 0)
        self.encoder = _GINEncoder(
            in_channels + q_channels + pe_channels, hidden, layers, edge_channels or None
        )
        self.head = _Head(layers * hidden + _graph_channels(self.widths), hidden, out_channels, dropout, task)

    def forward(self, batch: Batch) -> Tensor:
        """Logits ``(B, C)`` or regression values ``(B,)`` for a PyG batch."""
        feats = {k: _require(batch, k, w, "QuantumGIN") for k, w in self.widths.items()}
        x = torch.cat([feats["x"], feats["x_q"], feats["pe_q"]], dim=-1)
        edge = _edge_input(batch, self.edge_dim, self.q_edge_dim, "QuantumGIN")
        vector, size = _graph_batch(batch)
        z = self.encoder(x, batch.edge_index, edge, vector, size)
        return self.head(torch.cat([z, *_graph_inputs(feats)], dim=-1))


#: Graph-level inputs appended to the readout, in this order (``g_q`` only when built for it).
GRAPH_KEYS: tuple[str, ...] = ("hist_q", "g_q")


def _widths(
    in_channels: int, q_channels: int, pe_channels: int, hist_channels: int, graph_dim: int | None
) -> dict[str, int]:
    """Width of each input a quantum model reads, keyed by its ``Data`` attribute."""
    if graph_dim is not None and (isinstance(graph_dim, bool) or graph_dim < 1):
        raise InvalidInputError(f"graph_dim must be a positive width or None, got {graph_dim!r}")
    widths = {"x": in_channels, "x_q": q_channels, "pe_q": pe_channels, "hist_q": hist_channels}
    if graph_dim is not None:
        widths["g_q"] = graph_dim
    return widths


def _graph_channels(widths: dict[str, int]) -> int:
    return sum(widths.get(key, 0) for key in GRAPH_KEYS)


def _graph_inputs(feats: dict[str, Tensor]) -> list[Tensor]:
    return [feats[key] for key in GRAPH_KEYS if key in feats]


def _edge_input(batch: Batch, edge_dim: int | None, q_edge_dim: int | None, model: str) -> Tensor | None:
    parts = []
    if edge_dim is not None:
        parts.append(_require(batch, "edge_attr", edge_dim, model))
    if q_edge_dim is not None:
        parts.append(_require(batch, "edge_attr_q", q_edge_dim, model))
    return torch.cat(parts, dim=-1) if parts else None


class QuantumGPS(nn.Module):
    r"""GPS graph transformer (:class:`~torch_geometric.nn.GPSConv`) with ``pe_q`` as positional encoding.

    Node input :math:`h_i^0 = W_x (x_i \Vert x_{q,i}) + W_{pe}\, pe_{q,i}` (the
    quantum positional encoding is projected and added); each layer is
    :math:`h^{l+1} = \mathrm{GPS}(h^l) = \mathrm{MLP}(\mathrm{MPNN}(h^l) + \mathrm{MHA}(h^l))`
    with a local GIN(E) MPNN on :math:`W_e(\text{edge\_attr} \Vert C_{ij})` and
    ``heads``-head global attention (residuals and BatchNorm inside
    GPSConv); output :math:`\mathrm{MLP}(\Vert_l \sum_i h_i^l \Vert \text{hist\_q} \Vert g_q)`
    (:math:`g_q` only with ``graph_dim``).

    Args:
        in_channels: width of ``data.x``.
        q_channels: width of ``data.x_q``.
        pe_channels: width of ``data.pe_q``.
        hist_channels: width of ``data.hist_q``.
        out_channels: number of classes (classification) or 1 (regression).
        edge_dim: width of ``data.edge_attr`` to use, or ``None``.
        q_edge_dim: width of ``data.edge_attr_q`` to use, or ``None``.
        graph_dim: width of the graph-level ``data.g_q`` to use, or ``None``.
        hidden: hidden width, divisible by ``heads`` (default 64).
        layers: GPS layers (default 3).
        heads: attention heads (default 4).
        dropout: dropout inside GPS layers and the head (default 0).
        task: ``"classification"`` or ``"regression"``.

    Example:
        >>> import torch
        >>> from torch_geometric.data import Batch, Data
        >>> g = Data(x=torch.ones(3, 1), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
        ...          x_q=torch.rand(3, 1), pe_q=torch.rand(3, 13), edge_attr_q=torch.rand(4, 1),
        ...          hist_q=torch.rand(1, 4))
        >>> QuantumGPS(1, 1, 13, 4, 2, q_edge_dim=1, hidden=16)(Batch.from_data_list([g, g])).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        in_channels: int,
        q_channels: int,
        pe_channels: int,
        hist_channels: int,
        out_channels: int,
        *,
        edge_dim: int | None = None,
        q_edge_dim: int | None = None,
        graph_dim: int | None = None,
        hidden: int = 64,
        layers: int = 3,
        heads: int = 4,
        dropout: float = 0.0,
        task: Task = "classification",
    ) -> None:
        super().__init__()
        _check(task, out_channels, hidden, layers)
        if heads < 1 or hidden % heads:
            raise InvalidInputError(f"hidden={hidden} must be a positive multiple of heads={heads}")
        self.widths = _widths(in_channels, q_channels, pe_channels, hist_channels, graph_dim)
        self.edge_dim, self.q_edge_dim, self.graph_dim, self.task = edge_dim, q_edge_dim, graph_dim, task
        self.node_in = nn.Linear(in_channels + q_channels, hidden)
        self.pe_in = nn.Linear(pe_channels, hidden)
        edge_channels = (edge_dim or 0) + (q_edge_dim or 0)
        self.edge_in = nn.Linear(edge_channels, hidden) if edge_channels else None
        self.layers = nn.ModuleList()
        for _ in range(layers):
            mlp = _mlp(hidden, hidden, hidden)
            local = GINEConv(mlp) if edge_channels else GINConv(mlp)
            self.layers.append(
                GPSConv(
                    hidden,
                    local,
                    heads=heads,
                    dropout=dropout,
                    norm="batch_norm",
                    norm_kwargs={"allow_single_element": True},
                )
            )
        self.head = _Head(layers * hidden + _graph_channels(self.widths), hidden, out_channels, dropout, task)

    def forward(self, batch: Batch) -> Tensor:
        """Logits ``(B, C)`` or regression values ``(B,)`` for a PyG batch."""
        feats = {k: _require(batch, k, w, "QuantumGPS") for k, w in self.widths.items()}
        h = self.node_in(torch.cat([feats["x"], feats["x_q"]], dim=-1)) + self.pe_in(feats["pe_q"])
        edge = _edge_input(batch, self.edge_dim, self.q_edge_dim, "QuantumGPS")
        vector, size = _graph_batch(batch)
        kwargs = {} if self.edge_in is None or edge is None else {"edge_attr": self.edge_in(edge)}
        pooled = []
        for layer in self.layers:
            h = layer(h, batch.edge_index, vector, **kwargs)
            pooled.append(global_add_pool(h, vector, size=size))
        return self.head(torch.cat([*pooled, *_graph_inputs(feats)], dim=-1))

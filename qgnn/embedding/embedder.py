"""Graph → neutral-atom register: :func:`embed` and the :class:`Embedding` it returns.

Node ``k`` of the graph (in ``graph.nodes`` order) becomes qubit ``"q{k}"``.
Atoms of an edge should sit closer than the Rydberg blockade radius
``r = (C6/Ω)^(1/6)`` (``device.rydberg_blockade_radius(Ω)``) and atoms of a
non-edge farther, so that the blockade graph of the register is the input
graph (an exact unit-disk embedding). Lengths scale with the device's ``r``:
a device with a larger C6 (higher Rydberg level) spreads the same graph wider.

Three routes, by device: free placement (no layout needed), free placement
then a new layout around the atoms (:mod:`qgnn.embedding.layouts`), or a
search over the traps of the device's pre-calibrated layouts when it accepts
no new ones (:mod:`qgnn.embedding.calibrated`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, TypeAlias

import networkx as nx
import numpy as np
import pulser
from pulser.devices import AnalogDevice, Device, VirtualDevice

from qgnn.data.validation import graph_index, validate_graph
from qgnn.embedding.calibrated import place_on_calibrated_layouts, uses_calibrated_layouts
from qgnn.embedding.layouts import layout_register
from qgnn.embedding.obstructions import check_unit_disk_obstructions
from qgnn.embedding.optimize import UnitDiskProblem, normalise_start, search
from qgnn.embedding.quality import EmbeddingQuality, assess
from qgnn.embedding.starts import initial_layouts
from qgnn.errors import InvalidGraphError, InvalidInputError, NotEmbeddableError, ScheduleError, graph_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

AnyDevice: TypeAlias = Device | VirtualDevice
"""A Pulser device, physical or virtual (Pulser's public device types)."""

DEFAULT_RABI_FREQUENCY = 2 * math.pi * 1.0
"""Default Rabi frequency Ω in rad/µs (2π × 1 MHz), as in the QEK paper."""

DEFAULT_MARGIN = 0.07
"""Default relative safety margin: the optimiser aims for edges ≤ 0.93 r and non-edges ≥ 1.07 r."""


class EmbeddingWarning(UserWarning):
    """An embedding was returned that is not an exact unit-disk representation of its graph."""


@dataclass(frozen=True, eq=False)
class Embedding:
    """Atom positions realising a graph on a device, with their unit-disk quality.

    Immutable; compared by identity (it holds arrays and a Pulser register).

    Attributes:
        positions: ``(n, 2)`` read-only atom positions in µm (row ``k`` = qubit
            ``k``), those of ``register`` (layout-mapped where the device needs it).
        node_ids: the graph node of each qubit, in qubit order.
        qubit_ids: the register's qubit ids (``"q0"``, ``"q1"``, ...), in qubit order.
        qubit_of: graph node → qubit id.
        edges: graph edges as qubit-index pairs ``(k, l)`` with ``k < l``, sorted.
        register: the ``pulser.Register``, valid on ``device`` (with a
            ``RegisterLayout`` when ``device.requires_layout``: a new one, or
            a pre-calibrated one when the device accepts no new layouts).
        device: the Pulser device the register was built and validated for.
        device_name: ``device.name``.
        blockade_radius: ``device.rydberg_blockade_radius(rabi_frequency)`` in µm.
        rabi_frequency: Ω in rad/µs that the schedule must drive with for this
            blockade radius: the requested Ω, or on a calibrated layout with
            ``adjust_rabi_frequency=True`` the Ω that was chosen.
        index: the graph's dataset index, or ``None``.
        quality: the unit-disk quality of ``positions``.
        start_layout: the starting layout the optimiser kept, or
            ``"calibrated:<layout name>"`` (diagnostic).
    """

    positions: np.ndarray
    node_ids: tuple[Hashable, ...]
    qubit_ids: tuple[str, ...]
    qubit_of: dict[Hashable, str]
    edges: tuple[tuple[int, int], ...]
    register: pulser.Register
    device: AnyDevice
    device_name: str
    blockade_radius: float
    rabi_frequency: float
    index: int | None
    quality: EmbeddingQuality
    start_layout: str

    @property
    def n_atoms(self) -> int:
        """Number of atoms (graph nodes)."""
        return len(self.node_ids)

    @property
    def is_exact(self) -> bool:
        """``quality.is_exact``: the register's blockade graph is the input graph."""
        return self.quality.is_exact

    @property
    def positions_by_node(self) -> dict[Hashable, tuple[float, float]]:
        """Graph node → ``(x, y)`` in µm; accepted back by ``embed(initial_positions=...)``."""
        return {u: (float(x), float(y)) for u, (x, y) in zip(self.node_ids, self.positions, strict=True)}

    def draw(self, ax: Axes | None = None) -> Figure:
        """Draw the register with Pulser's ``Register.draw``, violated pairs highlighted.

        Pulser draws the atoms, a disc of radius ``blockade_radius / 2`` per
        atom (two discs overlap exactly when the atoms blockade each other) and
        the blockade graph in grey. On top, violated pairs are red (solid: an
        edge too long, dashed: a non-edge too short) and the device's maximum
        radial distance is a dotted circle. The view spans the atoms ± ``r``.
        Uses matplotlib's object API only (no ``pyplot``, safe with Agg).

        Args:
            ax: axes to draw on; a new figure is made when ``None``.

        Returns:
            The figure holding the drawing.

        Raises:
            InvalidInputError: ``ax`` does not belong to a matplotlib ``Figure``.
        """
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle

        if ax is None:
            figure = Figure(figsize=(6, 6))
            ax = figure.add_subplot()
        else:
            parent = ax.get_figure()
            if not isinstance(parent, Figure):
                raise InvalidInputError("ax must belong to a matplotlib Figure")
            figure = parent
        radius = self.blockade_radius
        self.register.draw(
            blockade_radius=radius, draw_half_radius=True, draw_graph=True, custom_ax=ax, show=False
        )
        pos = self.positions
        index = {u: k for k, u in enumerate(self.node_ids)}
        edge_set = set(self.edges)
        for u, v in self.quality.violated_pairs:
            a, b = sorted((index[u], index[v]))
            style = "-" if (a, b) in edge_set else "--"
            ax.plot(pos[[a, b], 0], pos[[a, b], 1], color="red", lw=2.0, ls=style, zorder=2)
        limit = self.device.max_radial_distance
        if limit is not None:
            ax.add_patch(Circle((0, 0), limit, fill=False, ls=":", color="0.5"))
        state = "exact" if self.is_exact else f"approximate, {self.quality.n_violations} violated"
        ax.set_title(f"{self.device_name}, r = {radius:.2f} µm ({state})")
        low, high = pos.min(axis=0) - radius, pos.max(axis=0) + radius
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_aspect("equal")
        return figure


def blockade_radius(device: AnyDevice, rabi_frequency: float) -> float:
    """Validate Ω for ``device`` and return its Rydberg blockade radius ``(C6/Ω)^(1/6)`` in µm.

    Args:
        device: a Pulser device.
        rabi_frequency: Ω in rad/µs.

    Raises:
        InvalidInputError: ``device`` is not a Pulser device.
        ScheduleError: Ω is not positive and finite, or exceeds every Rydberg
            channel's maximum amplitude on the device.
    """
    if not isinstance(device, Device | VirtualDevice):
        raise InvalidInputError(
            f"device must be a pulser Device or VirtualDevice, got {type(device).__name__}"
        )
    if not (isinstance(rabi_frequency, Real) and math.isfinite(rabi_frequency) and rabi_frequency > 0):
        raise ScheduleError(
            f"rabi_frequency must be a positive finite number in rad/µs, got {rabi_frequency!r}"
        )
    amps = [ch.max_amp for ch in device.channel_objects if ch.basis == "ground-rydberg"]
    if amps and all(a is not None for a in amps) and rabi_frequency > max(a for a in amps if a is not None):
        top = max(a for a in amps if a is not None)
        raise ScheduleError(
            f"rabi_frequency {rabi_frequency:.4g} rad/µs exceeds {device.name}'s largest Rydberg amplitude "
            f"{top:.4g} rad/µs; choose Ω ≤ {top:.4g} rad/µs"
        )
    return float(device.rydberg_blockade_radius(float(rabi_frequency)))


def _check_device_fit(graph: nx.Graph, device: AnyDevice, where: str) -> None:
    n = graph.number_of_nodes()
    if device.max_atom_num is not None and n > device.max_atom_num:
        raise InvalidGraphError(
            f"{where}: has {n} nodes but {device.name} holds at most {device.max_atom_num} atoms; "
            "use a smaller graph (e.g. load_dataset(..., max_nodes=...)) or a larger device"
        )


def _start_positions(
    positions: Mapping[Hashable, object], node_ids: tuple[Hashable, ...], where: str
) -> np.ndarray:
    if not isinstance(positions, Mapping):
        raise InvalidGraphError(
            f"{where}: initial_positions must map each node to (x, y) in µm, got {type(positions).__name__}"
        )
    missing = [u for u in node_ids if u not in positions]
    extra = [u for u in positions if u not in set(node_ids)]
    if missing or extra:
        raise InvalidGraphError(
            f"{where}: initial_positions must give exactly the graph's nodes; missing {missing[:5]!r}, "
            f"unknown {extra[:5]!r}"
        )
    rows = []
    for u in node_ids:
        try:
            row = np.asarray(positions[u], dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidGraphError(f"{where}: initial position of node {u!r} is not numeric: {exc}") from exc
        if row.shape != (2,):
            raise InvalidGraphError(
                f"{where}: initial position of node {u!r} must be (x, y) in µm, got shape {row.shape}"
            )
        if not np.all(np.isfinite(row)):
            raise InvalidGraphError(f"{where}: initial position of node {u!r} is not finite: {row.tolist()}")
        rows.append(row)
    return np.array(rows)


def _place_freely(
    graph: nx.Graph,
    adjacency: np.ndarray,
    device: AnyDevice,
    radius: float,
    margin: float,
    seed: int,
    user: np.ndarray | None,
    where: str,
) -> tuple[np.ndarray, str]:
    """Optimised atom positions (µm) for ``graph`` and the name of the start that gave them."""
    node_ids = tuple(graph.nodes)
    max_radial = math.inf if device.max_radial_distance is None else float(device.max_radial_distance)
    problem = UnitDiskProblem(adjacency, radius, float(device.min_atom_distance), max_radial, margin)
    rng = np.random.default_rng(seed)

    def starts() -> Iterator[tuple[str, np.ndarray]]:  # lazy: the search stops at the first exact one
        if user is not None:
            yield "initial", (user - user.mean(axis=0)) / radius
        for name, layout in initial_layouts(graph, node_ids, rng):
            yield name, normalise_start(problem, layout, rng)

    best = search(problem, starts(), rng)
    if not best.device_valid:
        raise NotEmbeddableError(
            f"{where}: could not place {len(node_ids)} atoms at least {device.min_atom_distance} µm apart "
            f"within {device.name}'s radial limit {device.max_radial_distance} µm"
        )
    return best.positions, best.start


def embed(
    graph: nx.Graph,
    device: AnyDevice = AnalogDevice,
    *,
    rabi_frequency: float = DEFAULT_RABI_FREQUENCY,
    seed: int = 0,
    strict: bool = False,
    index: int | None = None,
    initial_positions: Mapping[Hashable, object] | None = None,
    margin: float = DEFAULT_MARGIN,
    adjust_rabi_frequency: bool = False,
) -> Embedding:
    """Place one atom per node so the register's blockade graph is ``graph``.

    The blockade radius is ``r = device.rydberg_blockade_radius(Ω)``, so the
    embedding's scale follows the device's C6. Three routes:

    * **Free placement** (devices that accept new layouts, and virtual ones).
      After cheap impossibility checks (an induced K1,6 star; a degree above
      the packing bound, or a clique larger than fits, at the device's minimum
      spacing; see :mod:`qgnn.embedding.obstructions`), an L-BFGS optimiser
      (see :mod:`qgnn.embedding.optimize`) starts from RDKit 2D coordinates
      (molecules with an ``element`` node attribute, when rdkit is installed),
      Kamada–Kawai, several spring layouts and a spectral layout, and stops at
      the first exact embedding.
    * **New layout**: when ``device.requires_layout``, the atoms become traps
      of a new ``RegisterLayout`` padded with filler traps so the trap count
      and filling obey the device's rules (``WeightedAnalogDevice``: 150–512
      traps, filling 0.35–0.5; see :mod:`qgnn.embedding.layouts`).
    * **Calibrated traps**: when the device accepts no new layouts, the atoms
      go on traps of its ``pre_calibrated_layouts`` whose blockade graph is
      exactly ``graph`` (see :mod:`qgnn.embedding.calibrated`); with
      ``adjust_rabi_frequency`` other Ω within the Rydberg channel's limits
      are tried too, and the chosen Ω is the embedding's ``rabi_frequency``.
      No approximate embedding is returned on this route.

    Deterministic for a given ``seed``.

    Args:
        graph: an undirected simple ``networkx.Graph``.
        device: the Pulser device whose limits (minimum atom distance, maximum
            radial distance, maximum atom number, layout rules) must be met.
        rabi_frequency: Ω in rad/µs; sets the blockade radius.
        seed: random seed of the starting layouts and perturbations.
        strict: raise :class:`NotEmbeddableError` instead of warning when no
            exact embedding is found.
        index: the graph's dataset index for messages; defaults to
            ``graph.graph["index"]``.
        initial_positions: optional starting positions in µm (node → ``(x, y)``),
            tried first; exact, device-valid positions are kept (up to centring
            and small moves that widen the margins). Not allowed on a device
            that accepts only calibrated layouts.
        margin: relative safety margin ``m`` the optimiser aims for (edges ≤
            ``(1−m) r``, non-edges ≥ ``(1+m) r``); exactness itself is judged
            at ``r``. On calibrated traps it centres adjusted radii in their gaps.
        adjust_rabi_frequency: on a device that accepts only calibrated
            layouts, also try other Ω (``min_avg_amp < Ω ≤ max_amp``) when the
            requested one does not realise the graph. Ignored elsewhere.

    Returns:
        The :class:`Embedding`; when it is not exact (``strict=False``) an
        :class:`EmbeddingWarning` is issued.

    Raises:
        InvalidGraphError: ``graph`` is not a networkx graph, is directed or a
            multigraph, empty, has self-loops or more nodes than the device
            holds, or ``initial_positions`` is malformed or not finite.
        NotEmbeddableError: the graph provably has no exact embedding, or
            (``strict=True``) none was found, or the device's layout rules
            cannot be met, or no subset of its calibrated traps realises the graph.
        ScheduleError: ``rabi_frequency`` is not positive or above the device's maximum.
        InvalidInputError: ``margin`` is not a number in [0, 0.5), ``seed`` is
            not a non-negative integer, ``adjust_rabi_frequency`` is not a bool,
            or ``initial_positions`` is given for a calibrated-layout device.

    Example:
        >>> import networkx as nx
        >>> from qgnn.embedding import embed
        >>> emb = embed(nx.cycle_graph(5))
        >>> emb.is_exact, emb.qubit_ids[:2]
        (True, ('q0', 'q1'))
    """
    graph = validate_graph(graph, index)
    if index is None:
        index = graph_index(graph)
    where = graph_label(index)
    if isinstance(margin, bool) or not isinstance(margin, Real) or not 0 <= margin < 0.5:
        raise InvalidInputError(f"margin must be a number in [0, 0.5) (relative to r), got {margin!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(adjust_rabi_frequency, bool):
        raise InvalidInputError(f"adjust_rabi_frequency must be True or False, got {adjust_rabi_frequency!r}")
    radius = blockade_radius(device, rabi_frequency)
    omega = float(rabi_frequency)
    _check_device_fit(graph, device, where)

    node_ids = tuple(graph.nodes)
    qubit_ids = tuple(f"q{k}" for k in range(len(node_ids)))
    adjacency = nx.to_numpy_array(graph, nodelist=list(node_ids), dtype=bool, weight=None)
    user = None if initial_positions is None else _start_positions(initial_positions, node_ids, where)
    if uses_calibrated_layouts(device):
        assert isinstance(device, Device)  # narrowed by uses_calibrated_layouts
        if user is not None:
            raise InvalidInputError(
                f"{where}: initial_positions cannot be used on {device.name}, which accepts only its "
                "pre-calibrated layouts (atoms go on its traps)"
            )
        placement = place_on_calibrated_layouts(
            adjacency,
            qubit_ids,
            device,
            omega,
            adjust=adjust_rabi_frequency,
            margin=float(margin),
            where=where,
        )
        register, radius, omega = placement.register, placement.blockade_radius, placement.rabi_frequency
        start = f"calibrated:{placement.layout}"
    else:
        check_unit_disk_obstructions(graph, radius, float(device.min_atom_distance), device.name, where)
        atoms, start = _place_freely(graph, adjacency, device, radius, float(margin), int(seed), user, where)
        if device.requires_layout:
            register = layout_register(atoms, qubit_ids, device, where)
        else:
            register = pulser.Register(dict(zip(qubit_ids, atoms, strict=True)))
    positions = np.array([np.asarray(register.qubits[q], dtype=float) for q in qubit_ids])
    positions.setflags(write=False)
    try:
        device.validate_register(register)
        if register.layout is not None:
            device.validate_layout(register.layout)
    except (ValueError, TypeError) as exc:  # pulser's validation errors derive from these
        raise NotEmbeddableError(f"{where}: the register fails {device.name}'s validation: {exc}") from exc
    quality = assess(positions, adjacency, radius, node_ids)
    embedding = Embedding(
        positions=positions,
        node_ids=node_ids,
        qubit_ids=qubit_ids,
        qubit_of=dict(zip(node_ids, qubit_ids, strict=True)),
        edges=tuple((int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(adjacency, 1)), strict=True)),
        register=register,
        device=device,
        device_name=device.name,
        blockade_radius=radius,
        rabi_frequency=omega,
        index=index,
        quality=quality,
        start_layout=start,
    )
    if not quality.is_exact:
        shown = ", ".join(f"{u!r}–{v!r}" for u, v in quality.violated_pairs[:4])
        more = ", ..." if quality.n_violations > 4 else ""
        message = (
            f"{where}: no exact unit-disk embedding found on {device.name} at "
            f"Ω = {omega:.4g} rad/µs (r = {radius:.3f} µm): {quality.n_violations} pair(s) "
            f"violated ({shown}{more}); the graph may not be a unit-disk graph at this radius-to-spacing "
            "ratio"
        )
        if strict:
            raise NotEmbeddableError(message + "; pass strict=False to get the best approximate embedding")
        warnings.warn(message + "; the returned embedding is approximate", EmbeddingWarning, stacklevel=2)
    return embedding

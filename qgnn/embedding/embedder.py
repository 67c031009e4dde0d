"""Graph → neutral-atom register: :func:`embed` and the :class:`Embedding` it returns.

Node ``k`` of the graph (in ``graph.nodes`` order) becomes qubit ``"q{k}"``.
Atoms of an edge should sit closer than the Rydberg blockade radius
``r = (C6/Ω)^(1/6)`` (``device.rydberg_blockade_radius(Ω)``) and atoms of a
non-edge farther, so that the blockade graph of the register is the input
graph (an exact unit-disk embedding).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, cast

import networkx as nx
import numpy as np
import pulser
from pulser.devices import AnalogDevice, Device
from pulser.devices._device_datacls import BaseDevice
from pulser.register import RegisterLayout

from qgnn.data.validation import graph_index, validate_graph
from qgnn.embedding.layouts import initial_layouts
from qgnn.embedding.obstructions import check_unit_disk_obstructions
from qgnn.embedding.optimize import UnitDiskProblem, normalise_start, search
from qgnn.embedding.quality import EmbeddingQuality, assess
from qgnn.errors import InvalidGraphError, InvalidInputError, NotEmbeddableError, ScheduleError, graph_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
            ``RegisterLayout`` when ``device.requires_layout``).
        device: the Pulser device the register was built and validated for.
        device_name: ``device.name``.
        blockade_radius: ``device.rydberg_blockade_radius(rabi_frequency)`` in µm.
        rabi_frequency: Ω in rad/µs.
        index: the graph's dataset index, or ``None``.
        quality: the unit-disk quality of ``positions``.
        start_layout: the starting layout the optimiser kept (diagnostic).
    """

    positions: np.ndarray
    node_ids: tuple[Hashable, ...]
    qubit_ids: tuple[str, ...]
    qubit_of: dict[Hashable, str]
    edges: tuple[tuple[int, int], ...]
    register: pulser.Register
    device: BaseDevice
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
        """Draw the atoms, blockade discs, graph edges and violated pairs.

        Each atom gets a disc of radius ``blockade_radius / 2``, so two discs
        overlap exactly when the atoms blockade each other. Graph edges are
        grey lines; violated pairs are red (solid: an edge too long, dashed: a
        non-edge too short). The device's maximum radial distance is a dotted
        circle (in view when atoms come within ``r`` of it). The view spans the
        atoms ± ``r``, aspect equal. Uses matplotlib's object API only (no ``pyplot``, safe with Agg).

        Args:
            ax: axes to draw on; a new figure is made when ``None``.

        Returns:
            The figure holding the drawing.
        """
        from qgnn.embedding.drawing import draw_embedding

        return draw_embedding(self, ax)


def blockade_radius(device: BaseDevice, rabi_frequency: float) -> float:
    """Validate Ω for ``device`` and return its Rydberg blockade radius ``(C6/Ω)^(1/6)`` in µm.

    Args:
        device: a Pulser device.
        rabi_frequency: Ω in rad/µs.

    Raises:
        InvalidInputError: ``device`` is not a Pulser device.
        ScheduleError: Ω is not positive and finite, or exceeds every Rydberg
            channel's maximum amplitude on the device.
    """
    if not isinstance(device, BaseDevice):
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


def _check_device_fit(graph: nx.Graph, device: BaseDevice, where: str) -> None:
    n = graph.number_of_nodes()
    if device.max_atom_num is not None and n > device.max_atom_num:
        raise InvalidGraphError(
            f"{where}: has {n} nodes but {device.name} holds at most {device.max_atom_num} atoms; "
            "use a smaller graph (e.g. load_dataset(..., max_nodes=...)) or a larger device"
        )
    if device.requires_layout and isinstance(device, Device) and not device.accepts_new_layouts:
        raise NotEmbeddableError(
            f"{where}: {device.name} accepts only its pre-calibrated register layouts, and qgnn.embedding "
            "generates a new layout per graph; use a device that accepts new layouts"
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


def _register(
    positions: np.ndarray, qubit_ids: tuple[str, ...], device: BaseDevice, where: str
) -> pulser.Register:
    register = pulser.Register(dict(zip(qubit_ids, positions, strict=True)))
    if not device.requires_layout:
        return register
    if isinstance(device, Device):
        try:
            return register.with_automatic_layout(device)
        except RuntimeError as exc:
            raise NotEmbeddableError(
                f"{where}: Pulser could not build a register layout on {device.name}: {exc}"
            ) from exc
    # Pulser generates layouts for real Devices only; for a VirtualDevice the
    # atoms' own positions become the traps, padded as the filling rules need.
    from pulser.register._layout_gen import generate_trap_coordinates

    radial = device.max_radial_distance or math.ceil(float(np.max(np.linalg.norm(positions, axis=1))) + 1)
    traps = generate_trap_coordinates(
        positions,
        min_trap_dist=device.min_atom_distance,
        max_radial_dist=radial,
        max_layout_filling=device.max_layout_filling,
        optimal_layout_filling=device.optimal_layout_filling,
        min_traps=device.min_layout_traps,
        max_traps=device.max_layout_traps,
    )
    layout = RegisterLayout(traps)
    trap_ids = layout.get_traps_from_coordinates(*positions)
    return cast(pulser.Register, layout.define_register(*trap_ids, qubit_ids=qubit_ids))


def embed(
    graph: nx.Graph,
    device: BaseDevice = AnalogDevice,
    *,
    rabi_frequency: float = DEFAULT_RABI_FREQUENCY,
    seed: int = 0,
    strict: bool = False,
    index: int | None = None,
    initial_positions: Mapping[Hashable, object] | None = None,
    margin: float = DEFAULT_MARGIN,
) -> Embedding:
    """Place one atom per node so the register's blockade graph is ``graph``.

    The blockade radius is ``r = device.rydberg_blockade_radius(Ω)``. After
    cheap impossibility checks (an induced K1,6 star; a degree above the
    packing bound, or a clique larger than fits, at the device's minimum
    spacing; see :mod:`qgnn.embedding.obstructions`), an L-BFGS optimiser (see
    :mod:`qgnn.embedding.optimize`) starts from RDKit 2D coordinates (molecules
    with an ``element`` node attribute, when rdkit is installed), Kamada–Kawai,
    several spring layouts and a spectral layout, and stops at the first exact
    embedding. Deterministic for a given ``seed``. On devices that require a
    layout, the register is mapped onto ``Register.with_automatic_layout``.

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
            and small moves that widen the margins).
        margin: relative safety margin ``m`` the optimiser aims for (edges ≤
            ``(1−m) r``, non-edges ≥ ``(1+m) r``); exactness itself is judged
            at ``r``.

    Returns:
        The :class:`Embedding`; when it is not exact (``strict=False``) an
        :class:`EmbeddingWarning` is issued.

    Raises:
        InvalidGraphError: ``graph`` is not a networkx graph, is directed or a
            multigraph, empty, has self-loops or more nodes than the device
            holds, or ``initial_positions`` is malformed or not finite.
        NotEmbeddableError: the graph provably has no exact embedding, or
            (``strict=True``) none was found, or the device's layout rules
            cannot be met.
        ScheduleError: ``rabi_frequency`` is not positive or above the device's maximum.
        InvalidInputError: ``margin`` is not a number in [0, 0.5) or ``seed`` is
            not a non-negative integer.

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
    radius = blockade_radius(device, rabi_frequency)
    _check_device_fit(graph, device, where)
    check_unit_disk_obstructions(graph, radius, float(device.min_atom_distance), device.name, where)

    node_ids = tuple(graph.nodes)
    qubit_ids = tuple(f"q{k}" for k in range(len(node_ids)))
    adjacency = nx.to_numpy_array(graph, nodelist=list(node_ids), dtype=bool, weight=None)
    max_radial = math.inf if device.max_radial_distance is None else float(device.max_radial_distance)
    problem = UnitDiskProblem(adjacency, radius, float(device.min_atom_distance), max_radial, margin)
    rng = np.random.default_rng(seed)
    user = None if initial_positions is None else _start_positions(initial_positions, node_ids, where)

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
    register = _register(best.positions, qubit_ids, device, where)
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
        rabi_frequency=float(rabi_frequency),
        index=index,
        quality=quality,
        start_layout=best.start,
    )
    if not quality.is_exact:
        shown = ", ".join(f"{u!r}–{v!r}" for u, v in quality.violated_pairs[:4])
        more = ", ..." if quality.n_violations > 4 else ""
        message = (
            f"{where}: no exact unit-disk embedding found on {device.name} at "
            f"Ω = {rabi_frequency:.4g} rad/µs (r = {radius:.3f} µm): {quality.n_violations} pair(s) "
            f"violated ({shown}{more}); the graph may not be a unit-disk graph at this radius-to-spacing "
            "ratio"
        )
        if strict:
            raise NotEmbeddableError(message + "; pass strict=False to get the best approximate embedding")
        warnings.warn(message + "; the returned embedding is approximate", EmbeddingWarning, stacklevel=2)
    return embedding

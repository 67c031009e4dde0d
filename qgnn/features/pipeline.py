"""The FeaturePipeline: graphs → embedding → sequence → backend → Measurement.

It composes the stages with an on-disk cache (a rerun recomputes nothing),
parallel worker processes (one torch/BLAS thread each), largest-first
scheduling, progress bars, and a per-graph outcome: a graph that cannot be
embedded or run is returned with its reason, never dropped. Within a run,
graphs are embedded first, once per embedding key, then each distinct
sequence is run once (18 of MUTAG's 188 molecules repeat another's sequence).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import os
import pickle
import time
import warnings
from collections.abc import Hashable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import as_completed as futures_as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pulser
from pulser.devices import AnalogDevice
from tqdm.auto import tqdm

import qgnn
from qgnn.backends.base import Backend, Measurement, check_evaluation_times, check_shots
from qgnn.backends.subspace.memory import MemoryEstimate, release_cycles
from qgnn.data.canonical import canonical_form, canonical_relabel
from qgnn.data.validation import graph_index
from qgnn.errors import InvalidInputError, QgnnError, graph_label
from qgnn.features.cache import BlobCache, CacheCorruptionWarning, stable_hash
from qgnn.features.cache import cache_dir as default_cache_dir

EMBEDDING_CACHE_VERSION = "2"
MIN_TASKS_FOR_WORKERS = 8
MIN_ATOMS_FOR_WORKERS = 120


@dataclass(frozen=True)
class GraphResult:
    """What the pipeline produced for one graph.

    Args:
        index: the graph's dataset index (``graph.graph["index"]``), else its
            position in the input.
        n_nodes: number of nodes (= atoms).
        embedding: the :class:`qgnn.embedding.Embedding`, or ``None`` if
            embedding failed.
        measurement: the backend's :class:`Measurement`, or ``None`` on failure.
        error: why the graph failed, or ``None``.
        cached: True when the measurement came from the cache.
    """

    index: int
    n_nodes: int
    embedding: Any = None
    measurement: Measurement | None = None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        """True when the graph was featurised."""
        return self.measurement is not None


@dataclass(frozen=True)
class PreparedGraph:
    """A graph embedded and built into its sequence, not run (see :meth:`FeaturePipeline.build_sequences`).

    Args:
        index: the graph's dataset index, else its position in the input.
        n_nodes: number of nodes (= atoms).
        embedding: the :class:`qgnn.embedding.Embedding` (the caller's node
            names), or ``None`` if embedding failed.
        sequence: the validated ``pulser.Sequence``, or ``None`` on failure.
        error: why the graph failed, or ``None``.
    """

    index: int
    n_nodes: int
    embedding: Any = None
    sequence: pulser.Sequence | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the sequence was built."""
        return self.sequence is not None


@dataclass(frozen=True)
class _Task:
    position: int
    index: int
    graph: nx.Graph  # in canonical node order when ``original`` is set
    embedding: Any
    config: _Config
    original: nx.Graph | None = None
    embed_only: bool = False  # stop after the embedding (:meth:`FeaturePipeline._embed_all`)
    alone_later: bool = False  # a worker's task that the pipeline reruns alone when it does not fit


@dataclass(frozen=True)
class _Config:
    device: pulser.devices.Device
    schedule: Any
    backend: Backend
    evaluation_times: tuple[float, ...]
    shots: int | None
    embed_seed: int
    strict_embedding: bool


@dataclass(frozen=True)
class _Outcome:
    position: int
    embedding: Any = None
    measurement: Measurement | None = None
    sequence_key: str | None = None
    error: str | None = None
    seconds: float = 0.0
    needed_bytes: int | None = None  # set when the backend refused the graph for its memory budget
    deferred: bool = False  # not run: where its search should end does not fit a worker's share


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _embedding_rabi_frequency(schedule: Any) -> float:
    """The Ω (rad/µs) registers are embedded for (``embedding_rabi_frequency``, else the max Ω)."""
    return float(getattr(schedule, "embedding_rabi_frequency", schedule.max_rabi_frequency))


def _embed(graph: nx.Graph, index: int, config: _Config) -> Any:
    """Embed one graph; an approximate embedding is kept (its quality says so), not warned about."""
    from qgnn.embedding import EmbeddingWarning, embed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmbeddingWarning)
        return embed(
            graph,
            config.device,
            rabi_frequency=_embedding_rabi_frequency(config.schedule),
            seed=config.embed_seed,
            strict=config.strict_embedding,
            index=index,
        )


def _build(task: _Task, embedding: Any, config: _Config) -> pulser.Sequence:
    """The task's sequence, through the one graph → sequence route (node labels included).

    A label error is re-raised as the graph's own nodes name it (as :func:`_embed_task` does).
    """
    from qgnn.pulses import build_sequence

    try:
        return build_sequence(task.graph, embedding, config.schedule, config.device)
    except InvalidInputError:
        node_detuning = getattr(config.schedule, "node_detuning", None)
        if node_detuning is not None and task.original is not None:
            node_detuning.node_weights(task.original, where=graph_label(task.index))
        raise


def _embed_task(task: _Task, config: _Config) -> Any:
    """Embed a task's (canonical) graph; a failure is re-raised as the graph's own nodes name it."""
    try:
        return _embed(task.graph, task.index, config)
    except QgnnError:
        if task.original is None:
            raise
        _embed(task.original, task.index, config)  # the same proof, in the caller's node names
        raise


def _canonical(graph: nx.Graph, node_attr: str = "label") -> tuple[nx.Graph, dict[int, Hashable]]:
    """The graph in canonical node order (``node_attr`` respected) and canonical → original node names.

    Graphs the embedding will reject (directed, multigraph, self-loops, empty)
    are returned as they are, so their errors name the caller's nodes.
    """
    if (
        graph.is_directed()
        or graph.is_multigraph()
        or graph.number_of_nodes() == 0
        or nx.number_of_selfloops(graph)
    ):
        return graph, {}
    canonical, mapping = canonical_relabel(graph, canonical_form(graph, node_attr=node_attr))
    return canonical, {k: v for v, k in mapping.items()}


def _named(embedding: Any, names: dict[int, Hashable]) -> Any:
    """An embedding of a canonical graph, renamed to the caller's nodes."""
    if embedding is None or not names:
        return embedding
    quality = dataclasses.replace(
        embedding.quality,
        violated_pairs=tuple((names[a], names[b]) for a, b in embedding.quality.violated_pairs),
    )
    return dataclasses.replace(
        embedding,
        node_ids=tuple(names[n] for n in embedding.node_ids),
        qubit_of={names[n]: q for n, q in embedding.qubit_of.items()},
        quality=quality,
    )


def _sequence_key(sequence: pulser.Sequence, config: _Config) -> str:
    return stable_hash(
        {
            "sequence": sequence.to_abstract_repr(),
            "backend": config.backend.cache_key(),
            "shots": config.shots,
            "evaluation_times": config.evaluation_times,
        }
    )


def _largest_first(tasks: list[_Task]) -> list[_Task]:
    """Tasks by decreasing number of atoms: the longest runs start first, so workers finish together."""
    return sorted(tasks, key=lambda task: task.graph.number_of_nodes(), reverse=True)


def _work(task: _Task) -> _Outcome:
    """Embed (unless cached), build and run one graph; never raises for a graph's own failure."""
    start = time.perf_counter()
    config = task.config
    embedding = task.embedding
    try:
        if embedding is None:
            embedding = _embed_task(task, config)
        if task.embed_only:
            return _Outcome(task.position, embedding, seconds=time.perf_counter() - start)
        sequence = _build(task, embedding, config)
        key = _sequence_key(sequence, config)
        if task.alone_later:
            subspace: Any = config.backend  # only a Subspace's tasks are marked (see _budget_alone)
            estimate = subspace.memory_estimate(sequence, config.evaluation_times)
            if not _search_fits(subspace, estimate, len(sequence.register.qubits)):
                return _Outcome(task.position, embedding, deferred=True, seconds=time.perf_counter() - start)
        (measurement,) = config.backend.run(
            [sequence], shots=config.shots, evaluation_times=config.evaluation_times
        )
    except QgnnError as exc:
        failed = _Outcome(
            task.position,
            embedding,
            error=_describe(exc),
            seconds=time.perf_counter() - start,
            needed_bytes=getattr(exc, "needed_bytes", None),
        )
    else:
        return _Outcome(task.position, embedding, measurement, key, seconds=time.perf_counter() - start)
    release_cycles(failed.needed_bytes)  # the refused run's arrays, held by the exception's frames
    return failed


def _search_fits(backend: Any, estimate: MemoryEstimate, n_atoms: int) -> bool:
    """Whether a Subspace's run fits its budget at the cutoff its search plans to end at.

    ``estimate``: the backend's :meth:`~qgnn.backends.Subspace.memory_estimate`
    of the sequence (from the counts alone), ``n_atoms`` its register's size.
    A worker's graph for which it does not is run alone from the start:
    in the worker, its search would run the cutoffs that fit before it is
    refused (a 27-atom MUTAG molecule spent 2.6 core-minutes that way), and
    running alone would do them again.
    """
    from qgnn.backends.subspace import planned_cutoff

    if not estimate.fits:
        return False
    if backend.energy_cutoff is not None or backend.tolerance == 0.0:
        return True  # one run, the one estimated
    return bool(estimate.energy_cutoff >= planned_cutoff(n_atoms) * (1 - 1e-9))


def _work_in_pool_thread(task: _Task, num_threads: int) -> _Outcome:
    """:func:`_work` in a thread a pool hands out (a Dask task thread).

    numba's thread count is a setting of the calling thread, so the
    worker-wide :func:`_init_worker` does not reach the pool's threads: it
    is set here, before the Subspace kernels launch.
    """
    _limit_numba_threads(num_threads)
    return _work(task)


def _limit_numba_threads(num_threads: int) -> None:
    """Run the calling thread's numba kernels on at most ``num_threads`` threads (a per-thread setting)."""
    import numba

    numba.set_num_threads(min(num_threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


_THREAD_LIMITS: list[Any] = []  # keeps the worker's threadpoolctl limits alive


def _init_worker(num_threads: int) -> None:
    """Limit a worker's BLAS/OpenMP, numba and torch threads (numpy is imported: env vars are too late)."""
    from threadpoolctl import threadpool_limits

    _limit_numba_threads(num_threads)

    os.environ["OMP_NUM_THREADS"] = str(num_threads)
    os.environ["MKL_NUM_THREADS"] = str(num_threads)
    _THREAD_LIMITS.append(threadpool_limits(limits=num_threads))
    import torch

    torch.set_num_threads(num_threads)


def _main_is_importable() -> bool:
    """False when ``__main__`` came from stdin or ``-c``: spawn workers could not re-import it."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:  # interactive sessions and notebooks: spawn skips re-importing __main__
        return True
    return os.path.isfile(path)


def _load_embedding(payload: bytes, index: int) -> Any:
    """A cached embedding with this graph's index, or None when it cannot be read back."""
    try:
        embedding = pickle.loads(payload)
        return dataclasses.replace(embedding, index=index)
    except Exception as exc:  # an entry from an incompatible version: recompute it
        warnings.warn(
            f"cached embedding unreadable ({type(exc).__name__}): it will be recomputed",
            CacheCorruptionWarning,
            stacklevel=3,
        )
        return None


def _encode_measurement(measurement: Measurement) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **measurement.to_arrays())
    return buffer.getvalue()


def _decode_measurement(payload: bytes) -> Measurement:
    with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
        return Measurement.from_arrays({k: arrays[k] for k in arrays.files})


class FeaturePipeline:
    """Embed graphs, build their sequences, run them, and cache the measurements.

    Args:
        device: the Pulser device the registers and sequences must satisfy
            (default: the remote backend's fetched device, else ``AnalogDevice``).
        schedule: a :mod:`qgnn.pulses` schedule (default ``ConstantDrive()``:
            Ω = 2π rad/µs, δ = 0, 660 ns); its ``embedding_rabi_frequency``
            (by default its ``max_rabi_frequency``) sets the
            blockade radius used by the embedding.
        backend: a :class:`qgnn.backends.Backend` (default
            ``Subspace(tolerance=1e-3)``: exact evolution in a truncated Rydberg
            basis whose error is bounded and reported, ~50× faster than
            ``EmuSV()``, the exact reference).
        evaluation_times: fractions of the sequence duration to measure at.
        shots: ``None`` for exact probabilities, else the number of samples.
        cache_dir: cache root (default :func:`qgnn.features.cache_dir`);
            ``False`` disables caching.
        n_workers: worker processes (1 = run in this process; default: one per
            CPU core, and in this process when fewer than
            ``MIN_TASKS_FOR_WORKERS`` graphs or ``MIN_ATOMS_FOR_WORKERS`` atoms
            in all need computing, since starting a worker costs seconds).
        threads_per_worker: torch/BLAS threads in each worker (default 1:
            more threads per process is slower on a busy machine).
        executor: ``None`` (local processes) or ``"dask://host:port"`` to send
            the per-graph work to an existing Dask distributed cluster.
        embed_seed: seed of the embedding optimiser.
        strict_embedding: fail graphs that have no exact unit-disk embedding.
        progress: show a progress bar.

    Example:
        >>> from qgnn.data import load_dataset
        >>> pipe = FeaturePipeline(n_workers=2)
        >>> results = pipe.run(load_dataset("PTC_FM", max_nodes=8))  # doctest: +SKIP
        >>> [r.error for r in results if not r.ok]  # doctest: +SKIP
    """

    def __init__(
        self,
        device: pulser.devices.Device | None = None,
        schedule: Any = None,
        backend: Backend | None = None,
        *,
        evaluation_times: Sequence[float] = (1.0,),
        shots: int | None = None,
        cache_dir: str | Path | bool | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        executor: str | None = None,
        embed_seed: int = 0,
        strict_embedding: bool = False,
        progress: bool = True,
    ) -> None:
        from qgnn.backends import Subspace
        from qgnn.pulses import ConstantDrive

        if device is not None and not isinstance(
            device, pulser.devices.Device | pulser.devices.VirtualDevice
        ):
            raise InvalidInputError(f"device must be a pulser Device, got {type(device).__name__}")
        if n_workers is not None and (
            isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1
        ):
            raise InvalidInputError(f"n_workers must be a positive integer, got {n_workers!r}")
        if backend is not None and not isinstance(backend, Backend):
            raise InvalidInputError(
                f"backend must be a qgnn Backend (e.g. qgnn.backends.EmuSV()), got {type(backend).__name__}"
            )
        if schedule is not None and not (
            hasattr(schedule, "build") and hasattr(schedule, "max_rabi_frequency")
        ):
            raise InvalidInputError(
                "schedule must be a qgnn.pulses schedule (e.g. ConstantDrive()), "
                f"got {type(schedule).__name__}"
            )
        if isinstance(embed_seed, bool) or not isinstance(embed_seed, int) or embed_seed < 0:
            raise InvalidInputError(f"embed_seed must be a non-negative integer, got {embed_seed!r}")
        if (
            isinstance(threads_per_worker, bool)
            or not isinstance(threads_per_worker, int)
            or threads_per_worker < 1
        ):
            raise InvalidInputError(
                f"threads_per_worker must be a positive integer, got {threads_per_worker!r}"
            )
        if executor is not None and not str(executor).startswith("dask://"):
            raise InvalidInputError(f"executor must be None or 'dask://host:port', got {executor!r}")
        self._device = device
        self.schedule = schedule if schedule is not None else ConstantDrive()
        self.backend = backend if backend is not None else Subspace(tolerance=1e-3)
        self.evaluation_times = check_evaluation_times(evaluation_times)
        self.shots = check_shots(shots)
        self.n_workers = n_workers
        self._auto_workers = n_workers is None
        self.threads_per_worker = threads_per_worker
        self.executor = executor
        self.embed_seed = embed_seed
        self.strict_embedding = strict_embedding
        self.progress = progress
        self._cache_dir: str | Path | bool | None = cache_dir
        if cache_dir is False:
            self._embeddings: BlobCache | None = None
            self._measurements: BlobCache | None = None
        else:
            root = Path(cache_dir) if isinstance(cache_dir, str | Path) else default_cache_dir()
            self._embeddings = BlobCache(root, "embeddings")
            self._measurements = BlobCache(root, "measurements")
        self.last_run_seconds: dict[str, float] = {}

    def replace(self, **changes: Any) -> FeaturePipeline:
        """A new pipeline with the same settings except ``changes`` (any constructor argument).

        Example:
            >>> from qgnn.pulses import AnalogDMMDevice, ConstantDrive, NodeDetuning
            >>> labelled = FeaturePipeline(progress=False).replace(
            ...     device=AnalogDMMDevice, schedule=ConstantDrive(node_detuning=NodeDetuning({0: 1.0}, -6.0))
            ... )

        Raises:
            InvalidInputError: an unknown argument name, or a value the constructor rejects.
        """
        current: dict[str, Any] = {
            "device": self._device,
            "schedule": self.schedule,
            "backend": self.backend,
            "evaluation_times": self.evaluation_times,
            "shots": self.shots,
            "cache_dir": self._cache_dir,
            "n_workers": None if self._auto_workers else self.n_workers,
            "threads_per_worker": self.threads_per_worker,
            "executor": self.executor,
            "embed_seed": self.embed_seed,
            "strict_embedding": self.strict_embedding,
            "progress": self.progress,
        }
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise InvalidInputError(
                f"FeaturePipeline.replace: unknown argument(s) {unknown}; use {sorted(current)}"
            )
        current.update(changes)
        return FeaturePipeline(**current)

    @property
    def device(self) -> pulser.devices.Device:
        """The device registers and sequences are built for.

        A remote backend's device comes from specs it fetches at run time
        (``backend.fetch_device()``); otherwise the ``device`` given, or
        ``AnalogDevice``.
        """
        if self._device is None:
            fetch = getattr(self.backend, "fetch_device", None)
            self._device = fetch() if fetch is not None else AnalogDevice
        return self._device

    @property
    def _config(self) -> _Config:
        return _Config(
            self.device,
            self.schedule,
            self.backend,
            self.evaluation_times,
            self.shots,
            self.embed_seed,
            self.strict_embedding,
        )

    def fingerprint(self) -> str:
        """Hash of everything that changes the features (device, schedule, backend, times, shots)."""
        return stable_hash(
            {
                "device": self.device.to_abstract_repr(),
                "schedule": repr(self.schedule),
                "backend": self.backend.cache_key(),
                "evaluation_times": self.evaluation_times,
                "shots": self.shots,
                "embed_seed": self.embed_seed,
                "strict": self.strict_embedding,
            }
        )[:16]

    def _embedding_key(self, graph: nx.Graph) -> str:
        return stable_hash(
            {
                "version": EMBEDDING_CACHE_VERSION,
                "packages": [qgnn.__version__, pulser.__version__],
                # element names and bond labels seed the embedding's RDKit start layout
                "nodes": [[repr(n), graph.nodes[n].get("element")] for n in graph.nodes],
                "edges": [
                    [repr(u), repr(v), repr(d.get("label")), repr(d.get("bond"))]
                    for u, v, d in graph.edges(data=True)
                ],
                "device": self.device.to_abstract_repr(),
                "rabi_frequency": _embedding_rabi_frequency(self.schedule),
                "seed": self.embed_seed,
                "strict": self.strict_embedding,
            }
        )

    def run_one(self, graph: nx.Graph) -> GraphResult:
        """Featurise one graph (no worker processes, no progress bar)."""
        saved = self.n_workers, self.progress
        self.n_workers, self.progress = 1, False
        try:
            return self.run([graph])[0]
        finally:
            self.n_workers, self.progress = saved

    def run(self, graphs: Iterable[nx.Graph]) -> list[GraphResult]:
        """Featurise every graph; one :class:`GraphResult` per input, in input order."""
        if isinstance(graphs, nx.Graph):
            raise InvalidInputError(
                "run() takes an iterable of graphs: use run_one(graph) for a single graph"
            )
        graph_list = list(graphs)
        config = self._config
        results, tasks, embedding_keys, names = self._plan(graph_list, config, use_measurements=True)
        tasks.sort(key=lambda t: -t.graph.number_of_nodes())
        start = time.perf_counter()
        ready, failed = self._embed_all(tasks)
        bar = tqdm(
            total=len(graph_list),
            initial=len(graph_list) - len(tasks),
            desc="quantum features",
            unit="graph",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        computed = 0
        with bar:
            for task, outcome, shared in itertools.chain(
                ((task, outcome, False) for task, outcome in failed), self._execute_distinct(ready)
            ):
                if not shared:
                    computed += 1
                    self._store(task, outcome, embedding_keys.get(task.position))
                results[task.position] = GraphResult(
                    task.index,
                    task.graph.number_of_nodes(),
                    _named(outcome.embedding, names[task.position]),
                    outcome.measurement,
                    None if outcome.measurement is not None else outcome.error,
                )
                bar.update(1)
                if outcome.error:
                    bar.set_postfix_str(f"{graph_label(task.index)} failed", refresh=False)
        self.last_run_seconds = {"compute": time.perf_counter() - start, "computed": float(computed)}
        return [r for r in results if r is not None]

    def _plan(
        self, graph_list: list[Any], config: _Config, *, use_measurements: bool
    ) -> tuple[list[GraphResult | None], list[_Task], dict[int, str], dict[int, dict[int, Hashable]]]:
        """Results already known (bad input, cached measurements) and the tasks left to compute.

        Every graph is taken to canonical node order (respecting the schedule's
        node-detuning attribute) and its embedding read from the cache.
        """
        node_detuning = getattr(config.schedule, "node_detuning", None)
        node_attr = node_detuning.attribute if node_detuning is not None else "label"
        results: list[GraphResult | None] = [None] * len(graph_list)
        tasks: list[_Task] = []
        embedding_keys: dict[int, str] = {}
        names: dict[int, dict[int, Hashable]] = {}
        for position, graph in enumerate(graph_list):
            if not isinstance(graph, nx.Graph):
                results[position] = GraphResult(
                    position,
                    0,
                    error=f"InvalidGraphError: graph at position {position} is a {type(graph).__name__}, "
                    "not a networkx.Graph (convert PyG Data with qgnn.data.from_pyg)",
                )
                continue
            index = graph_index(graph, position)
            canonical, names[position] = _canonical(graph, node_attr)
            embedding = None
            if self._embeddings is not None:
                embedding_keys[position] = self._embedding_key(canonical)
                payload = self._embeddings.get(embedding_keys[position])
                embedding = _load_embedding(payload, index) if payload is not None else None
            task = _Task(position, index, canonical, embedding, config, graph if names[position] else None)
            if use_measurements and embedding is not None and self._measurements is not None:
                cached = self._cached_measurement(task, config)
                if cached is not None:
                    results[position] = GraphResult(
                        index,
                        canonical.number_of_nodes(),
                        _named(embedding, names[position]),
                        cached,
                        cached=True,
                    )
                    continue
            tasks.append(task)
        return results, tasks, embedding_keys, names

    def build_sequences(self, graphs: Iterable[nx.Graph]) -> list[PreparedGraph]:
        """Embed every graph and build its sequence exactly as :meth:`run` does, without running it.

        This is the route the cloud command submits through, so a dataset
        submitted with ``qgnn cloud submit`` and later featurised with
        ``qgnn train --backend pasqal:…`` is the same set of sequences (the
        job ledger recognises them). Embeddings are cached as in :meth:`run`.

        Returns:
            One :class:`PreparedGraph` per input, in input order; a graph that
            cannot be embedded or built carries its reason in ``error``.
        """
        if isinstance(graphs, nx.Graph):
            raise InvalidInputError("build_sequences() takes an iterable of graphs, e.g. [graph]")
        graph_list = list(graphs)
        config = self._config
        results, tasks, embedding_keys, names = self._plan(graph_list, config, use_measurements=False)
        prepared: list[PreparedGraph | None] = [
            None if r is None else PreparedGraph(r.index, r.n_nodes, error=r.error) for r in results
        ]
        for task in tasks:
            embedding = task.embedding
            try:
                if embedding is None:
                    embedding = _embed_task(task, config)
                    self._store(task, _Outcome(task.position, embedding), embedding_keys.get(task.position))
                sequence = _build(task, embedding, config)
            except QgnnError as exc:
                prepared[task.position] = PreparedGraph(
                    task.index,
                    task.graph.number_of_nodes(),
                    _named(embedding, names[task.position]),
                    error=_describe(exc),
                )
                continue
            prepared[task.position] = PreparedGraph(
                task.index, task.graph.number_of_nodes(), _named(embedding, names[task.position]), sequence
            )
        return [p for p in prepared if p is not None]

    def _cached_measurement(self, task: _Task, config: _Config) -> Measurement | None:
        assert self._measurements is not None
        try:
            sequence = _build(task, task.embedding, config)
        except QgnnError:
            return None
        payload = self._measurements.get(_sequence_key(sequence, config))
        if payload is None:
            return None
        try:
            return _decode_measurement(payload)
        except (ValueError, KeyError, OSError):
            return None

    def _store(self, task: _Task, outcome: _Outcome, embedding_key: str | None) -> None:
        if self._embeddings is None or self._measurements is None:
            return
        if task.embedding is None and outcome.embedding is not None and embedding_key is not None:
            self._embeddings.put(embedding_key, pickle.dumps(outcome.embedding))
        if (
            outcome.measurement is not None
            and outcome.sequence_key is not None
            and not outcome.measurement.settings.get("coarsened", False)  # depends on the memory budget
        ):
            self._measurements.put(outcome.sequence_key, _encode_measurement(outcome.measurement))

    def _execute_distinct(self, tasks: list[_Task]) -> Iterator[tuple[_Task, _Outcome, bool]]:
        """``(task, outcome, shared)`` for embedded tasks, each distinct sequence run once.

        Every sequence is built here and run once per sequence key: inputs
        that give the same sequence (e.g. MUTAG molecules that differ only in
        how their bonds are written) share the outcome (``shared``), each
        with its own embedding, as the cache would return it.
        """
        config = self._config
        by_key: dict[str, list[_Task]] = {}
        for task in tasks:
            try:
                sequence = _build(task, task.embedding, config)
            except QgnnError as exc:
                yield task, _Outcome(task.position, task.embedding, error=_describe(exc)), False
                continue
            by_key.setdefault(_sequence_key(sequence, config), []).append(task)
        copies = {group[0].position: group for group in by_key.values()}
        for outcome in self._execute([group[0] for group in by_key.values()]):
            first, *others = copies[outcome.position]
            yield first, outcome, False
            for task in others:
                shared = dataclasses.replace(outcome, position=task.position, embedding=task.embedding)
                yield task, shared, True

    def _embed_all(self, tasks: list[_Task]) -> tuple[list[_Task], list[tuple[_Task, _Outcome]]]:
        """Tasks with their embeddings, and the failed ones with their outcomes.

        The tasks without an embedding are embedded (in the workers) once per
        embedding key: graphs identical up to node names share it, as the
        cache would return it. Each embedding is cached as soon as it is
        made. A failed embedding is redone per graph, so that each error
        names its graph and nodes.
        """
        ready = [t for t in tasks if t.embedding is not None]
        groups: dict[str, list[_Task]] = {}
        for task in tasks:
            if task.embedding is None:
                groups.setdefault(self._embedding_key(task.graph), []).append(task)
        if not groups:
            return ready, []
        by_first = {group[0].position: (key, group) for key, group in groups.items()}
        failed: list[tuple[_Task, _Outcome]] = []
        alone: list[_Task] = []  # copies of a graph whose embedding failed
        total = sum(len(group) for group in groups.values())
        jobs = [dataclasses.replace(group[0], embed_only=True) for group in groups.values()]
        bar = tqdm(total=total, desc="embedding", unit="graph", disable=not self.progress, dynamic_ncols=True)
        with bar:
            for outcome in self._embed_jobs(jobs):
                key, (first, *others) = by_first[outcome.position]
                bar.update(1 + len(others))
                if outcome.embedding is None:
                    failed.append((first, outcome))
                    alone.extend(others)
                    continue
                self._store(first, outcome, key)
                for task in (first, *others):
                    embedding = dataclasses.replace(outcome.embedding, index=task.index)
                    ready.append(dataclasses.replace(task, embedding=embedding))
        by_position = {t.position: t for t in alone}
        for outcome in self._embed_jobs([dataclasses.replace(t, embed_only=True) for t in alone]):
            task = by_position[outcome.position]
            if outcome.embedding is None:
                failed.append((task, outcome))
            else:
                ready.append(dataclasses.replace(task, embedding=outcome.embedding))
        return ready, failed

    def _embed_jobs(self, jobs: list[_Task]) -> Iterator[_Outcome]:
        """Embedding-only outcomes: in the workers, or here for a remote backend (it embeds here too)."""
        if hasattr(self.backend, "run_detailed"):
            return (_work(job) for job in jobs)
        return self._execute_all(jobs)

    def _execute(self, tasks: list[_Task]) -> Iterator[_Outcome]:
        """Outcomes of ``tasks``; graphs that do not fit a worker's memory share run alone afterwards.

        With several workers each run gets its share of the memory budget; a
        graph whose search would end at a cutoff that needs more is not run
        there (:func:`_search_fits`, from the counts), and a graph refused
        there (its search went further) is run again: both in this process
        after the others, with the whole budget, on every core, when the
        backend's budget was left at its default. A Subspace with
        ``over_budget="coarsen"`` coarsens only there: in the workers it
        raises, so every graph gets the whole budget before it is approximated.
        """
        alone_budget = self._budget_alone()
        coarsens = getattr(self.backend, "over_budget", "raise") == "coarsen"
        shared = tasks
        if alone_budget is not None:
            config = self._config
            if coarsens:  # only alone, with the whole budget
                strict = copy.copy(self.backend)
                strict.over_budget = "raise"  # type: ignore[attr-defined]  # a Subspace: see _budget_alone
                config = dataclasses.replace(config, backend=strict)
            shared = [dataclasses.replace(t, config=config, alone_later=True) for t in tasks]
        retry: list[_Task] = []
        by_position = {t.position: t for t in tasks}
        for outcome in self._execute_all(shared):
            if alone_budget is not None and outcome.deferred:
                retry.append(by_position[outcome.position])
                continue
            if (
                alone_budget is not None
                and outcome.needed_bytes is not None
                and (coarsens or outcome.needed_bytes <= alone_budget)
                and outcome.embedding is not None
            ):
                task = by_position[outcome.position]
                retry.append(dataclasses.replace(task, embedding=outcome.embedding))
                continue
            yield outcome
        if retry:
            assert alone_budget is not None
            backend = copy.copy(self.backend)
            backend.max_memory = alone_budget  # type: ignore[attr-defined]  # checked in _budget_alone
            config = dataclasses.replace(self._config, backend=backend)
            for task in retry:
                yield _work(dataclasses.replace(task, config=config))

    def _budget_alone(self) -> int | None:
        """The memory budget of one graph running alone, when the backend's budget is the default share."""
        explicit_budget = getattr(self.backend, "max_memory", None) is not None
        if self.executor is not None or not hasattr(self.backend, "max_memory") or explicit_budget:
            return None
        from qgnn.backends.subspace import default_max_memory

        return default_max_memory(workers=1)

    def _execute_all(self, tasks: list[_Task]) -> Iterator[_Outcome]:
        if not tasks:
            return
        if hasattr(self.backend, "run_detailed"):
            yield from self._execute_remote_batch(tasks)
        elif self.executor is not None:
            yield from self._execute_dask(tasks)
        elif (workers := self._workers_for(tasks)) == 1:
            for task in tasks:
                yield _work(task)
        else:
            import multiprocessing

            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads_per_worker,),
            ) as pool:
                futures: list[Future[_Outcome]] = [pool.submit(_work, task) for task in _largest_first(tasks)]
                for future in futures_as_completed(futures):
                    yield future.result()

    def _workers_for(self, tasks: list[_Task]) -> int:
        n_tasks = len(tasks)
        if self.n_workers is None:
            atoms = sum(t.graph.number_of_nodes() for t in tasks)
            small = n_tasks < MIN_TASKS_FOR_WORKERS or atoms < MIN_ATOMS_FOR_WORKERS
            workers = 1 if small else min(os.cpu_count() or 1, n_tasks)
        else:
            workers = min(self.n_workers, n_tasks)
        if workers > 1 and not _main_is_importable():
            warnings.warn(
                "the main script came from stdin or -c, which spawned worker processes cannot "
                f"re-import: running the {n_tasks} graphs in this process instead of {workers} workers "
                "(save the script to a file to use workers)",
                RuntimeWarning,
                stacklevel=4,
            )
            return 1
        return workers

    def _execute_remote_batch(self, tasks: list[_Task]) -> Iterator[_Outcome]:
        """Embed and build locally, then send every sequence in one remote submission.

        The remote backend validates everything before sending, records its
        jobs (nothing is paid twice) and reports each failed graph.
        """
        config = self._config
        built: list[tuple[_Task, Any, pulser.Sequence, str]] = []
        for task in tasks:
            try:
                embedding = task.embedding or _embed_task(task, config)
                sequence = _build(task, embedding, config)
            except QgnnError as exc:
                yield _Outcome(task.position, task.embedding, error=_describe(exc))
                continue
            built.append((task, embedding, sequence, _sequence_key(sequence, config)))
        if not built:
            return
        outcomes = self.backend.run_detailed(  # type: ignore[attr-defined]
            [b[2] for b in built],
            shots=config.shots,
            evaluation_times=config.evaluation_times,
            labels=[graph_label(b[0].index) for b in built],
        )
        for (task, embedding, _, key), outcome in zip(built, outcomes, strict=True):
            if isinstance(outcome, Measurement):
                yield _Outcome(task.position, embedding, outcome, key)
            else:
                yield _Outcome(task.position, embedding, error=f"{outcome.status}: {outcome.message}")

    def _execute_dask(self, tasks: list[_Task]) -> Iterator[_Outcome]:
        from qgnn.errors import require_extra

        require_extra("distributed", "dask")
        from distributed import Client, as_completed

        address = str(self.executor).removeprefix("dask://")
        with Client(address) as client:
            client.run(_init_worker, self.threads_per_worker)
            futures = {
                client.submit(_work_in_pool_thread, task, self.threads_per_worker, pure=False): task
                for task in _largest_first(tasks)
            }
            for future in as_completed(futures):
                task = futures[future]
                try:
                    yield future.result()
                except Exception as exc:  # a lost worker costs only its in-flight graphs
                    yield _Outcome(task.position, error=f"worker lost: {_describe(exc)}")

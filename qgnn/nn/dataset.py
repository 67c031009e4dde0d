"""A shipped dataset with quantum features, processed once and stored on disk."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch_geometric.data import InMemoryDataset

from qgnn.data import load_dataset
from qgnn.errors import DatasetError
from qgnn.features import FeaturePipeline, cache_dir
from qgnn.nn.transforms import QuantumFeatures, QuantumFeatureWarning, failure_message, fill_edgeless


class QuantumDataset(InMemoryDataset):
    r"""A shipped dataset (:func:`qgnn.data.load_dataset`) with :class:`QuantumFeatures` attached.

    The first construction loads the graphs, featurises them all with one
    ``pipeline.run`` call (the transform is the dataset's ``pre_transform``,
    applied in batch), and saves the result under
    ``<root>/<name>-<sha256[:12]>-<max_nodes|all>-<pipeline fingerprint>-pe<pe_dim>-h<hist_length|auto>``
    (``root`` defaults to ``qgnn.features.cache_dir() / "pyg"``), so different
    pipelines or settings never share processed files. Later constructions
    load from disk without running the pipeline.

    Graphs that could not be featurised stay in the dataset with
    ``q_ok = False`` and zero quantum features; their indices and reasons are
    in :attr:`failures`, and every construction warns
    (:class:`~qgnn.nn.transforms.QuantumFeatureWarning`) while there are any.

    Args:
        name: shipped dataset name, case-insensitive, e.g. ``"MUTAG"``, or a
            TU-format folder (anything :func:`qgnn.data.load_dataset` reads);
            the processed folder is named after the data's SHA-256, so your
            own copy never collides with a shipped dataset.
        pipeline: the :class:`~qgnn.features.FeaturePipeline` measuring the graphs.
        max_nodes: keep graphs with at most this many nodes (``None``: all).
        root: folder holding processed datasets (default ``cache_dir()/pyg``).
        pe_dim: leading correlation eigenspaces in ``pe_q`` (default 8).
        hist_length: padded excitation-histogram length (default: largest graph + 1).
        transform: PyG transform applied on access (not stored).
        force_reload: recompute even if processed files exist.

    Raises:
        DatasetError: ``name`` is neither a shipped dataset nor a readable TU-format folder.

    Example:
        >>> from qgnn.features import FeaturePipeline
        >>> ds = QuantumDataset("PTC_FM", FeaturePipeline(progress=False), max_nodes=4)  # doctest: +SKIP
        >>> ds[0].x_q.shape, len(ds.failures)  # doctest: +SKIP
        (torch.Size([3, 1]), 0)
    """

    def __init__(
        self,
        name: str | Path,
        pipeline: FeaturePipeline,
        *,
        max_nodes: int | None = None,
        root: str | Path | None = None,
        pe_dim: int = 8,
        hist_length: int | None = None,
        transform: object | None = None,
        force_reload: bool = False,
    ) -> None:
        self._graphs = load_dataset(name, max_nodes=max_nodes)
        self.name = self._graphs.name
        self.max_nodes = max_nodes
        self.pipeline = pipeline
        self.quantum = QuantumFeatures(pipeline, pe_dim=pe_dim, hist_length=hist_length)
        base = Path(root) if root is not None else cache_dir() / "pyg"
        folder = (
            f"{self.name}-{self._graphs.sha256[:12]}-{'all' if max_nodes is None else max_nodes}"
            f"-{pipeline.fingerprint()}"
            f"-pe{pe_dim}-h{'auto' if hist_length is None else hist_length}"
        )
        super().__init__(
            str(base / folder),
            transform=transform,  # type: ignore[arg-type]
            pre_transform=self.quantum,
            log=False,
            force_reload=force_reload,
        )
        self.load(self.processed_paths[0])
        try:
            raw = json.loads(Path(self.processed_paths[1]).read_text())
            self.failures: dict[int, str] = {int(k): str(v) for k, v in raw.items()}
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"processed failure list {self.processed_paths[1]} is unreadable ({exc}): "
                "construct the dataset with force_reload=True"
            ) from exc
        if self.failures:
            warnings.warn(failure_message(self.failures, self.name), QuantumFeatureWarning, stacklevel=2)

    @property
    def raw_file_names(self) -> list[str]:
        """None: the raw graphs come from :func:`qgnn.data.load_dataset`."""
        return []

    @property
    def processed_file_names(self) -> list[str]:
        """The collated graphs and the failure list (JSON, index → reason)."""
        return ["data.pt", "failures.json"]

    @property
    def ok_mask(self) -> torch.Tensor:
        """Boolean mask of the graphs that were featurised (``q_ok``), shape ``(len(self),)``."""
        return self._data.q_ok[torch.as_tensor(list(self.indices()), dtype=torch.long)]

    def process(self) -> None:
        """Featurise the dataset's graphs in one batch, save graphs and failures."""
        graphs = fill_edgeless(self._graphs.to_pyg())
        if not graphs:
            raise DatasetError(
                f"{self.name} has no graph with at most {self.max_nodes} nodes: raise max_nodes"
            )
        quantum = self.quantum
        featured = quantum.featurise(graphs)
        self.save(featured, self.processed_paths[0])
        Path(self.processed_paths[1]).write_text(
            json.dumps({str(k): v for k, v in sorted(quantum.failures.items())}, indent=1)
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.name}, {len(self)}, failures={len(self.failures)})"

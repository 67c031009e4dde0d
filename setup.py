"""Packaging that pyproject.toml cannot express: the shipped datasets inside the wheel.

The repository keeps its datasets in the top-level ``datasets/`` folder, the one
source of truth. A wheel (``pip wheel .``, ``pip install .``) maps that folder to
``qgnn/_datasets``, where an installed qgnn finds them
(:func:`qgnn.data.datasets_root`); a source checkout or an editable install reads
``datasets/`` itself. ``[tool.setuptools.packages.find]`` cannot add packages whose
folders lie outside ``qgnn/``, so the package list lives here (each dataset folder
is listed as a data-only package, as setuptools asks); every other setting is in
pyproject.toml.
"""

from setuptools import find_namespace_packages, find_packages, setup

FOLDERS = find_namespace_packages(where="datasets", exclude=["__pycache__"])
DATASET_PACKAGES = [f"qgnn._datasets.{folder}" for folder in FOLDERS]

setup(
    packages=[*find_packages(include=["qgnn*"]), "qgnn._datasets", *DATASET_PACKAGES],
    package_dir={"qgnn._datasets": "datasets"},
    package_data={
        "qgnn": ["py.typed"],
        "qgnn._datasets": ["SHA256SUMS", "README.md", "stats.json"],
        **{package: ["*"] for package in DATASET_PACKAGES},
    },
)

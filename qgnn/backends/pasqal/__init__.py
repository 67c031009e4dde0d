"""Pasqal cloud backend: the Fresnel QPU and Pasqal's cloud emulators (extra: ``qgnn[cloud]``).

:class:`PasqalCloud` implements the :class:`~qgnn.backends.base.Backend`
protocol on ``pasqal_cloud.PasqalCloudConnection``; every job goes through the
:class:`~qgnn.backends.ledger.JobLedger` so reruns never pay twice.
"""

from qgnn.backends.pasqal.backend import (
    DEVICE_TYPES,
    CloudJobError,
    JobFailure,
    PasqalCloud,
    backend_from_spec,
)
from qgnn.backends.pasqal.transport import CloudRequestError, RetryPolicy
from qgnn.backends.pasqal.validation import PreparedSequence, sequence_hash, split_shots

__all__ = [
    "DEVICE_TYPES",
    "CloudJobError",
    "CloudRequestError",
    "JobFailure",
    "PasqalCloud",
    "PreparedSequence",
    "RetryPolicy",
    "backend_from_spec",
    "sequence_hash",
    "split_shots",
]

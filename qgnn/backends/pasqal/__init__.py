"""Pasqal cloud backend: the Fresnel QPU and Pasqal's cloud emulators (extra: ``qgnn[cloud]``).

:class:`PasqalCloud` implements the :class:`~qgnn.backends.base.Backend`
protocol on ``pasqal_cloud.PasqalCloudConnection``; every job goes through the
:class:`~qgnn.backends.ledger.JobLedger` so reruns never pay twice.

:func:`login_source` says where a login would come from (``"environment"``,
``"config file <path>"`` or ``None``) without reading it out.

Modules, one idea each: :mod:`.credentials` (where logins come from),
:mod:`.connection` (endpoints and login), :mod:`.transport` (timeouts, the one
retry loop, error messages), :mod:`.devices` (device types, fetched specs),
:mod:`.validation` (local checks before sending), :mod:`.submission`
(idempotent batch creation), :mod:`.polling` (following batches),
:mod:`.results` (merging job counts, failures), :mod:`.backend` (the
:class:`PasqalCloud` facade), :mod:`.inputs` (what the command line submits).
"""

from qgnn.backends.pasqal.backend import PasqalCloud, backend_from_spec
from qgnn.backends.pasqal.credentials import login_source
from qgnn.backends.pasqal.devices import DEVICE_TYPES
from qgnn.backends.pasqal.results import CloudJobError, JobFailure
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
    "login_source",
    "sequence_hash",
    "split_shots",
]

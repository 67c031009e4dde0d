"""HTTP behaviour of qgnn's Pasqal cloud calls: timeouts, retries, error messages.

The SDK's own retry loop (``pasqal_cloud.utils.retry``) repeats *every*
request, POSTs included, on 429/5xx with up to 31 s of sleeps, and its result
polling never gives up. qgnn therefore takes retries over: through the SDK's
``client_class`` hook it mounts a transport adapter on the SDK's
``requests.Session`` that bounds each request by ``http_timeout_s`` and turns a
connection failure, a timeout or a 408/425/429/5xx answer into
:class:`TransientCloudError` — an exception the SDK lets through untouched.
:func:`call` then retries calls with exponential backoff (honouring
``Retry-After``); batch creation (:mod:`qgnn.backends.pasqal.submission`) goes
through the same loop but never repeats its POST before it has looked the
batch up by its tag. Nothing in the SDK is modified.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from qgnn.errors import BackendError, InvalidInputError

logger = logging.getLogger("qgnn.backends.pasqal")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
FailureKind = Literal["transient", "malformed", "rejected", "auth"]


NOT_PROCESSED_STATUS = frozenset({425, 429, 503})
"""Statuses by which a server says it did not act on the request (too early, rate-limited, unavailable)."""


class TransientCloudError(Exception):
    """A request failed in a way worth retrying (connection, timeout, 408/425/429/5xx).

    Args:
        detail: what failed, without credentials.
        status: the HTTP status, when there was an answer.
        retry_after: the server's ``Retry-After`` (s), when given.
        processed: ``False`` when the server provably did not act on the request
            (no connection, or 425/429/503); ``None`` when it may have.
    """

    def __init__(
        self,
        detail: str,
        status: int | None = None,
        retry_after: float | None = None,
        processed: bool | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.processed = processed


class CloudRequestError(BackendError):
    """A Pasqal cloud request failed for good.

    Args:
        message: full explanation (what, why, how to fix).
        kind: ``"transient"`` (gave up retrying), ``"malformed"`` (unreadable
            reply), ``"rejected"`` (4xx), ``"auth"`` (401/403).
        status: the HTTP status, when known.
    """

    def __init__(self, message: str, kind: FailureKind = "transient", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.kind, self.status))


def check_seconds(name: str, value: object, *, allow_zero: bool) -> float:
    """A finite duration in seconds (> 0, or ≥ 0 with ``allow_zero``), else :class:`InvalidInputError`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "non-negative" if allow_zero else "positive"
        raise InvalidInputError(f"{name} must be a {kind} number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How qgnn retries idempotent cloud calls.

    Args:
        max_retries: retries after the first attempt (default 4).
        backoff_s: first wait (s); doubles each retry (default 1.0).
        max_backoff_s: cap on one wait (s) (default 30.0).
        settle_s: after a batch creation without a clear answer, how long to
            keep looking for the batch by its tag before sending it again (s,
            default 60): a cloud that registers a received batch later than
            this could end up with two.
    """

    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    settle_s: float = 60.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise InvalidInputError(f"max_retries must be a non-negative integer, got {self.max_retries!r}")
        for name in ("backoff_s", "max_backoff_s", "settle_s"):
            check_seconds(name, getattr(self, name), allow_zero=True)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        wait = self.backoff_s * 2**attempt
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff_s)


def _route(url: str | None) -> str:
    """The URL's path only (no query string, no host)."""
    return urlsplit(url or "").path or "/"


def server_message(response: requests.Response) -> str:
    """The human part of an error answer (JSend ``description``/``message``), ≤ 300 characters."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join((response.text or "").split())
        return (text[:300] or response.reason or "no message").strip()
    message: Any = None
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict):
            message = data.get("description") or data.get("message")
        message = message or body.get("message") or body.get("error_description") or body.get("error")
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return str(message or response.reason or "no message")[:300]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


class QgnnAdapter(HTTPAdapter):
    """Transport adapter: a per-request timeout, and transient failures raised for qgnn to retry.

    Args:
        timeout_s: upper bound on each request's connect and read time (s).
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__(max_retries=0)
        self.timeout_s = float(timeout_s)

    def send(
        self,
        request: Any,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send ``request`` within the timeout; raise :class:`TransientCloudError` when worth retrying."""
        bound = (
            self.timeout_s
            if timeout is None or isinstance(timeout, tuple)
            else min(float(timeout), self.timeout_s)
        )
        what = f"{request.method} {_route(request.url)}"
        try:
            response = super().send(
                request, stream=stream, timeout=bound, verify=verify, cert=cert, proxies=proxies
            )
        except requests.ConnectTimeout as exc:
            raise TransientCloudError(f"{what}: no connection within {bound:g} s", processed=False) from exc
        except requests.Timeout as exc:
            raise TransientCloudError(f"{what}: no answer within {bound:g} s") from exc
        except requests.ConnectionError as exc:
            raise TransientCloudError(
                f"{what}: connection failed ({_root_cause(exc)})",
                processed=False if _never_connected(exc) else None,
            ) from exc
        if response.status_code in RETRYABLE_STATUS:
            raise TransientCloudError(
                f"{what}: HTTP {response.status_code}: {server_message(response)}",
                status=response.status_code,
                retry_after=_retry_after(response),
                processed=False if response.status_code in NOT_PROCESSED_STATUS else None,
            )
        return response


def _never_connected(exc: BaseException) -> bool:
    """True when no connection was made (so the server never saw the request)."""
    from urllib3.exceptions import NewConnectionError

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, NewConnectionError):
            return True
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    return False


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return type(seen).__name__


def client_class(timeout_s: float) -> type:
    """A ``pasqal_cloud`` ``HTTPClient`` subclass whose session uses :class:`QgnnAdapter`."""
    from pasqal_cloud.http_client import HTTPClient

    class QgnnHTTPClient(HTTPClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            adapter = QgnnAdapter(timeout_s)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    return QgnnHTTPClient


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)


@dataclass(frozen=True)
class Failure:
    """A classified failure of one cloud call."""

    kind: FailureKind
    detail: str
    status: int | None = None
    retry_after: float | None = None
    processed: bool | None = None


def classify(exc: BaseException) -> Failure | None:
    """Classify an exception raised by an SDK call; ``None`` if it is not a cloud failure."""
    import pydantic

    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, TransientCloudError):
            return Failure("transient", e.detail, e.status, e.retry_after, e.processed)
    for e in chain:
        if isinstance(e, requests.HTTPError) and e.response is not None:
            status = e.response.status_code
            detail = f"HTTP {status}: {server_message(e.response)}"
            if status in (401, 403):
                return Failure("auth", detail, status)
            if status in RETRYABLE_STATUS:
                return Failure("transient", detail, status, _retry_after(e.response))
            return Failure("rejected", detail, status)
    for e in chain:
        if isinstance(e, (requests.Timeout, requests.ConnectionError)):
            return Failure("transient", f"connection failed ({_root_cause(e)})")
        if isinstance(e, json.JSONDecodeError):
            return Failure("malformed", f"the reply is not valid JSON ({e.msg} at character {e.pos})")
        if isinstance(e, pydantic.ValidationError):
            fields = sorted({".".join(str(p) for p in err["loc"]) for err in e.errors()})
            return Failure("malformed", f"the reply lacks or mistypes fields {fields}")
        if isinstance(e, KeyError):
            return Failure(
                "malformed", f"the reply has no {e.args[0]!r} field" if e.args else "a field is missing"
            )
        if isinstance(e, (TypeError, IndexError, AttributeError)):
            return Failure("malformed", f"the reply has an unexpected shape ({type(e).__name__})")
    return None


def describe(what: str, failure: Failure, attempts: int) -> str:
    """The message of a call that failed for good."""
    if failure.kind == "auth":
        return (
            f"{what}: the Pasqal cloud refused the credentials ({failure.detail}); check PASQAL_USERNAME/"
            "PASQAL_PASSWORD, the config file or the token provider, and the project id"
        )
    if failure.kind == "rejected":
        return f"{what}: the Pasqal cloud rejected the request ({failure.detail})"
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if failure.kind == "malformed":
        return f"{what}: the Pasqal cloud sent a malformed reply after {tries}: {failure.detail}"
    return f"{what}: the Pasqal cloud is unreachable or failing after {tries} ({failure.detail})"


def call(
    what: str,
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    recover: Callable[[Failure, BaseException], T | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run an SDK call, retrying transient failures and malformed replies with backoff.

    This is qgnn's only retry loop. An idempotent call needs no ``recover``. A
    call that must not be repeated blindly (a batch creation) passes
    ``recover``: it runs after every retryable failure, before the backoff, and
    returns what the lost call produced when it can find it (the call is then
    not repeated), or ``None`` to retry.

    Args:
        what: what the call does, for messages ("fetch batch 1234").
        fn: the call (no arguments).
        policy: the retry policy.
        recover: see above; what it raises propagates unchanged.
        sleep: the sleep function (seconds).

    Raises:
        CloudRequestError: the call failed for good; the message says why.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # the SDK's errors derive from BaseException
            failure = classify(exc)
            if failure is None:
                raise
            retryable = failure.kind in ("transient", "malformed")
            found = recover(failure, exc) if retryable and recover is not None else None
            if found is not None:
                return found
            if not retryable or attempt >= policy.max_retries:
                raise CloudRequestError(
                    describe(what, failure, attempt + 1), failure.kind, failure.status
                ) from exc
            wait = policy.delay(attempt, failure.retry_after)
            logger.info(
                "%s failed (%s); retry %d/%d in %.2f s",
                what,
                failure.detail,
                attempt + 1,
                policy.max_retries,
                wait,
            )
            sleep(wait)
            attempt += 1

"""Opening a ``pasqal_cloud.PasqalCloudConnection``: which endpoints, which login.

The login material is resolved (:mod:`qgnn.backends.pasqal.credentials`) at the
moment the connection is opened and handed straight to the SDK; nothing here
keeps it. Requests go through qgnn's transport adapter
(:func:`~qgnn.backends.pasqal.transport.client_class`), which bounds each one
and lets qgnn, not the SDK, decide what is retried.
"""

from __future__ import annotations

from typing import Any

from qgnn.backends.pasqal.credentials import (
    resolve_auth_endpoint,
    resolve_endpoint,
    resolve_login,
    resolve_project_id,
)
from qgnn.backends.pasqal.transport import RetryPolicy, call, client_class
from qgnn.errors import BackendError, InvalidInputError, require_extra


def endpoint_key(endpoints: Any) -> str:
    """The core API URL as given or configured (``"default"``: Pasqal's), without importing the SDK.

    Args:
        endpoints: a URL, a ``pasqal_cloud`` ``Endpoints`` or ``None`` (configured or Pasqal's).
    """
    core = getattr(endpoints, "core", None)
    if isinstance(core, str):
        return core.rstrip("/")
    url = resolve_endpoint(endpoints if isinstance(endpoints, str) else None)
    return url.rstrip("/") if url else "default"


def sdk_endpoints(endpoints: Any) -> Any:
    """``endpoints`` as a ``pasqal_cloud.endpoints.Endpoints`` (a URL sets both core and account).

    Raises:
        InvalidInputError: ``endpoints`` is neither a URL, an ``Endpoints`` nor ``None``.
    """
    from pasqal_cloud.endpoints import Endpoints

    if isinstance(endpoints, Endpoints):
        return endpoints
    if endpoints is not None and not isinstance(endpoints, str):
        raise InvalidInputError(
            f"endpoints must be a URL or pasqal_cloud Endpoints, got {type(endpoints).__name__}"
        )
    url = resolve_endpoint(endpoints)
    return Endpoints(core=url.rstrip("/"), account=url.rstrip("/")) if url else Endpoints()


def connect(
    *,
    project_id: str | None,
    endpoints: Any,
    token_provider: Any,
    auth_endpoint: str | None,
    http_timeout_s: float,
    retry: RetryPolicy,
    token_provider_dropped: bool = False,
) -> Any:
    """Log in and return the SDK's ``PasqalCloudConnection``.

    Args:
        project_id: Pasqal project (``None``: environment or config file).
        endpoints: see :func:`sdk_endpoints`.
        token_provider: a ``pasqal_cloud`` ``TokenProvider``, or ``None`` for a username/password login.
        auth_endpoint: token URL for password logins (``None``: configured, else Pasqal's).
        http_timeout_s: bound on each HTTP request (s).
        retry: retry policy of the login.
        token_provider_dropped: the caller's token provider was dropped by pickling
            (said in the error when no other credentials exist).

    Raises:
        BackendError: no credentials, or the login failed (:class:`CloudRequestError`).
    """
    require_extra("pasqal_cloud", "cloud")
    from pasqal_cloud import PasqalCloudConnection
    from pasqal_cloud.endpoints import (
        AUDIENCE,
        AUTH0_TOKEN_PROVIDER_GRANT_TYPE,
        PUBLIC_CLIENT_ID,
        REALM,
        TokenProviderConf,
    )

    try:
        login = resolve_login(token_provider)
    except BackendError as exc:
        if token_provider_dropped:
            raise BackendError(f"{exc} (token providers are not pickled with the backend)") from None
        raise
    kwargs: dict[str, Any] = {
        "project_id": resolve_project_id(project_id),
        "endpoints": sdk_endpoints(endpoints),
        "client_class": client_class(http_timeout_s),
    }
    auth_url = resolve_auth_endpoint(auth_endpoint)
    if auth_url and login.token_provider is None:
        kwargs["auth_config"] = TokenProviderConf(
            token_endpoint=auth_url,
            public_client_id=PUBLIC_CLIENT_ID,
            audience=AUDIENCE,
            realm=REALM,
            grant_type=AUTH0_TOKEN_PROVIDER_GRANT_TYPE,
        )
    return call(
        "log in to the Pasqal cloud", lambda: PasqalCloudConnection(**login.sdk_kwargs(), **kwargs), retry
    )

"""Where Pasqal cloud credentials and endpoints come from (never from the repository).

Order of precedence: an explicit ``token_provider`` object; the environment
(``PASQAL_USERNAME`` / ``PASQAL_PASSWORD`` / ``PASQAL_PROJECT_ID``); a TOML
file outside the repository, ``$QGNN_PASQAL_CONFIG`` or
``~/.config/qgnn/pasqal.toml`` (mode 0600 when it holds a password)::

    username = "me@lab.org"
    password = "..."
    project_id = "..."
    endpoint = "https://apis.pasqal.cloud/core-fast"        # optional
    auth_endpoint = "https://.../oauth/token"                # optional

Credentials are read when a connection is opened and handed straight to the
SDK; qgnn keeps no copy of them, so they cannot reach a log, an exception, the
job ledger or a pickle.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from qgnn.errors import BackendError

ENV_USERNAME = "PASQAL_USERNAME"
ENV_PASSWORD = "PASQAL_PASSWORD"
ENV_PROJECT_ID = "PASQAL_PROJECT_ID"
ENV_CONFIG = "QGNN_PASQAL_CONFIG"
ENV_ENDPOINT = "QGNN_PASQAL_ENDPOINT"
ENV_AUTH_ENDPOINT = "QGNN_PASQAL_AUTH_ENDPOINT"

_CONFIG_KEYS = frozenset({"username", "password", "project_id", "endpoint", "auth_endpoint"})


def config_path() -> Path:
    """The user config file: ``$QGNN_PASQAL_CONFIG``, else ``$XDG_CONFIG_HOME/qgnn/pasqal.toml``
    (``~/.config/qgnn/pasqal.toml``)."""
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".config") / "qgnn" / "pasqal.toml"


def read_config() -> dict[str, str]:
    """The settings of the user config file (empty when it does not exist).

    Raises:
        BackendError: the file is unreadable, not TOML, has unknown keys or
            non-string values, or holds a password while readable by others.
    """
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # its message gives a position, never the file's text
        raise BackendError(f"the Pasqal config file {path} is not valid TOML ({exc}): fix it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendError(f"cannot read the Pasqal config file {path}: {type(exc).__name__}") from None
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise BackendError(f"unknown keys {unknown} in {path}; allowed: {sorted(_CONFIG_KEYS)}")
    bad = sorted(k for k, v in data.items() if not isinstance(v, str))
    if bad:
        raise BackendError(f"{path}: {bad} must be strings")
    if "password" in data and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BackendError(
            f"{path} holds a password but other users may read it "
            f"(mode {stat.S_IMODE(path.stat().st_mode):o}): run `chmod 600 {path}`"
        )
    return dict(data)


def _setting(env_name: str, key: str, config: dict[str, str]) -> str | None:
    value = os.environ.get(env_name) or config.get(key)
    return value or None


def resolve_project_id(explicit: str | None) -> str:
    """The project id: ``explicit``, else ``$PASQAL_PROJECT_ID``, else the config file's."""
    value = explicit or _setting(ENV_PROJECT_ID, "project_id", read_config())
    if not value:
        raise BackendError(
            f"no Pasqal project id: pass project_id=..., set {ENV_PROJECT_ID}, "
            f"or add project_id to {config_path()}"
        )
    return value


def resolve_endpoint(explicit: str | None) -> str | None:
    """The core API URL override: ``explicit``, else ``$QGNN_PASQAL_ENDPOINT``, else the config file's."""
    return explicit or _setting(ENV_ENDPOINT, "endpoint", read_config())


def resolve_auth_endpoint(explicit: str | None) -> str | None:
    """The token endpoint override: ``explicit``, else ``$QGNN_PASQAL_AUTH_ENDPOINT``, else the config's."""
    return explicit or _setting(ENV_AUTH_ENDPOINT, "auth_endpoint", read_config())


@dataclass(frozen=True, repr=False)
class Login:
    """Short-lived login material handed to the SDK; refuses to be printed or pickled.

    Args:
        source: where it came from: ``"token provider"``, ``"environment"`` or ``"config file <path>"``.
        username: account e-mail (``None`` with a token provider).
        password: account password (``None`` with a token provider).
        token_provider: a ``pasqal_cloud`` ``TokenProvider``.
    """

    source: str
    username: str | None = field(default=None)
    password: str | None = field(default=None)
    token_provider: Any = field(default=None)

    def __repr__(self) -> str:
        return f"Login(source={self.source!r}, credentials=***)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Pasqal login material is never pickled")

    def sdk_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``PasqalCloudConnection``."""
        if self.token_provider is not None:
            return {"token_provider": self.token_provider}
        return {"username": self.username, "password": self.password}


def _password_login() -> Login | None:
    """The username/password login of the environment, else of the config file, else ``None``."""
    user, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if user and password:
        return Login(source="environment", username=user, password=password)
    config = read_config()
    if config.get("username") and config.get("password"):
        return Login(
            source=f"config file {config_path()}", username=config["username"], password=config["password"]
        )
    return None


def login_source() -> str | None:
    """Where a username/password login would come from now, never the credentials themselves.

    Returns:
        ``"environment"`` (``PASQAL_USERNAME`` and ``PASQAL_PASSWORD`` set),
        ``"config file <path>"``, or ``None`` when neither holds both (then only a
        ``token_provider`` can log in).

    Raises:
        BackendError: the config file is unreadable, malformed, or holds a
            password while readable by others (as when logging in).
    """
    login = _password_login()
    return None if login is None else login.source


def resolve_login(token_provider: Any | None) -> Login:
    """Pick the login: the token provider, else the environment, else the config file.

    Raises:
        BackendError: no complete credentials anywhere (the SDK would prompt for a password).
    """
    if token_provider is not None:
        return Login(source="token provider", token_provider=token_provider)
    login = _password_login()
    if login is not None:
        return login
    raise BackendError(
        f"no Pasqal cloud credentials: set {ENV_USERNAME} and {ENV_PASSWORD}, write username and password "
        f"to {config_path()} (chmod 600), or pass token_provider=<pasqal_cloud TokenProvider>"
    )

"""The ``mysql://`` URL: where the server is, and the options Conveyor reads from the query."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from ...errors import ConfigError
from ...urls import mask_url

_OPTIONS = {
    "connect_timeout": 5.0,
    "read_timeout": 30.0,
    "write_timeout": 30.0,
    "lock_wait_timeout": 5.0,
    "retry_window": 10.0,
    "poll_interval": 0.005,
}


@dataclass(frozen=True)
class MySQLOptions:
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = ""
    unix_socket: str | None = None
    timeouts: dict[str, float] = field(default_factory=lambda: dict(_OPTIONS))
    auto_migrate: bool = True


def parse_url(url: str, name: str = "mysql") -> MySQLOptions:
    parts = urlsplit(url)
    where = f"connection {name!r}"
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigError(f"{where}: the URL must name a database, e.g. mysql://user@host/app")
    timeouts = dict(_OPTIONS)
    unix_socket, auto_migrate = None, True
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key == "unix_socket":
            unix_socket = raw
            continue
        if key == "auto_migrate":
            auto_migrate = flag(raw, key, name)
            continue
        if key not in timeouts:
            known = ", ".join(sorted([*_OPTIONS, "unix_socket", "auto_migrate"]))
            raise ConfigError(f"{where}: unknown URL option {key!r}; known: {known}")
        try:
            timeouts[key] = float(raw)
        except ValueError:
            timeouts[key] = -1.0
        if timeouts[key] <= 0:
            raise ConfigError(f"{where}: {key} must be a positive number, got {raw!r}")
    try:
        port = parts.port or 3306
    except ValueError:
        raise ConfigError(f"{where}: invalid port in {mask_url(url)!r}") from None
    return MySQLOptions(
        host=parts.hostname or "127.0.0.1", port=port, user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""), database=database, unix_socket=unix_socket,
        timeouts=timeouts, auto_migrate=auto_migrate,
    )  # fmt: skip


def flag(raw: str, key: str, name: str) -> bool:
    """A yes/no URL option."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"connection {name!r}: {key} must be true or false, got {raw!r}")

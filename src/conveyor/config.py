"""Settings: ``[tool.conveyor]`` in pyproject.toml or ``conveyor.toml``, then ``CONVEYOR_*``.

Example ``conveyor.toml``::

    default = "database"          # the connection used when a job names none
    app = ["myapp.jobs"]          # modules that define jobs (imported by workers)
    max_payload = 1048576

    [connections.database]
    url = "sqlite:///conveyor.db"  # relative to this file's folder
    retry_after = 30               # lease in seconds, renewed while a job runs

Environment: ``CONVEYOR_CONNECTION`` (name or URL of the default connection, like Laravel's
``QUEUE_CONNECTION``), ``CONVEYOR_APP`` (comma list), ``CONVEYOR_MAX_PAYLOAD``, and
``CONVEYOR_<NAME>_<KEY>`` for key ``<key>`` (``url``, ``retry_after``, ``queue``,
``block_for``, ``prefix``) of connection ``<name>``. The top-level names always mean the
top-level setting, so a connection named ``max`` is not handed ``CONVEYOR_MAX_PAYLOAD``; a
variable is a connection's only when its whole name is that connection's name and one of those
keys, so ``CONVEYOR_A_B_URL`` is connection ``a_b``'s URL even where a connection ``a`` exists.
Any other ``CONVEYOR_<NAME>_...`` of a known connection is an error, as a misspelt key is.

Numbers must be finite and positive: ``retry_after = nan`` would store a lease the database
refuses, and ``inf`` a lease that never runs out.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .envelope import DEFAULT_MAX_PAYLOAD
from .errors import ConfigError, InvalidQueueName
from .queues import check_queue_name
from .urls import mask_url, unencoded_userinfo

KNOWN_SCHEMES = (
    "sync", "sqlite", "redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel",
    "rediss+sentinel", "postgresql", "postgres", "mysql", "mariadb",
)  # fmt: skip
_TOP_KEYS = {"default", "app", "max_payload", "connections"}
_CONN_KEYS = {"url", "retry_after", "queue", "block_for", "prefix"}
#: environment variables that are top-level settings, never a connection's
TOP_LEVEL_ENV = frozenset({"CONVEYOR_CONNECTION", "CONVEYOR_APP", "CONVEYOR_MAX_PAYLOAD"})


@dataclass(frozen=True)
class ConnectionSettings:
    name: str
    url: str
    retry_after: float = 30.0
    queue: str = "default"
    block_for: float | None = None
    prefix: str = "conveyor"

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0].lower()

    def masked_url(self) -> str:
        return mask_url(self.url)


@dataclass(frozen=True)
class Settings:
    default: str = "database"
    connections: Mapping[str, ConnectionSettings] = field(default_factory=dict)
    app: tuple[str, ...] = ()
    max_payload: int = DEFAULT_MAX_PAYLOAD
    source: str = "built-in defaults"
    root: str = "."

    def connection(self, name: str | None = None) -> ConnectionSettings:
        key = name or self.default
        found = self.connections.get(key)
        if found is None:
            known = ", ".join(sorted(self.connections))
            raise ConfigError(f"unknown connection {key!r} (known: {known}; source: {self.source})")
        return found

    def with_app(self, modules: tuple[str, ...]) -> Settings:
        return replace(self, app=tuple(dict.fromkeys((*self.app, *modules))))


def _builtin(root: Path) -> dict[str, ConnectionSettings]:
    return {
        "sync": ConnectionSettings("sync", "sync://"),
        "database": ConnectionSettings("database", f"sqlite:///{root / 'conveyor.db'}"),
    }


def find_config(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """Nearest ``conveyor.toml``, or ``pyproject.toml`` with a ``[tool.conveyor]`` table."""
    for folder in (start, *start.parents):
        own = folder / "conveyor.toml"
        if own.is_file():
            return own, _read_toml(own)
        project = folder / "pyproject.toml"
        if project.is_file():
            data = _read_toml(project).get("tool", {}).get("conveyor")
            if isinstance(data, dict):
                return project, data
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_settings(
    start: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if env is None else env
    found = find_config(Path(start or os.getcwd()).resolve())
    root = found[0].parent if found else Path(start or os.getcwd()).resolve()
    source = str(found[0]) if found else "built-in defaults"
    data = found[1] if found else {}
    return _build(data, env, root, source)


def _build(data: Mapping[str, Any], env: Mapping[str, str], root: Path, source: str) -> Settings:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {sorted(unknown)[0]!r}; known: {sorted(_TOP_KEYS)}"
        )
    connections = _builtin(root)
    raw_conns = data.get("connections", {})
    if not isinstance(raw_conns, dict):
        raise ConfigError(f"{source}: 'connections' must be a table of [connections.NAME]")
    for name, raw in raw_conns.items():
        connections[name] = _connection(name, raw, root, f"{source}: connections.{name}")
    for name, overrides in _env_overrides(env, list(connections)).items():
        merged = {**_as_dict(connections[name]), **overrides}
        where = f"environment CONVEYOR_{name.upper()}_*"
        labels = {key: f"CONVEYOR_{name.upper()}_{key.upper()}" for key in overrides}
        connections[name] = _connection(name, merged, root, where, labels)
    default = str(data.get("default", "database"))
    default_from = f"{source}: 'default'"
    from_env = env.get("CONVEYOR_CONNECTION")
    if from_env:
        default, default_from = from_env, "CONVEYOR_CONNECTION"
        if "://" in from_env:
            # named after the variable, so every message says where the URL came from; a name
            # made of the URL's host would change with it and stale the failed records
            default = "CONVEYOR_CONNECTION"
            connections[default] = _connection(default, {"url": from_env}, root, default)
    if default not in connections:
        raise ConfigError(f"{default_from} names unknown connection {default!r}")
    payload_from = f"{source}: max_payload"
    if "CONVEYOR_MAX_PAYLOAD" in env:
        payload_from = "CONVEYOR_MAX_PAYLOAD"
    return Settings(
        default=default,
        connections=connections,
        app=_modules(env.get("CONVEYOR_APP") or data.get("app", ()), source),
        max_payload=_count(
            env.get("CONVEYOR_MAX_PAYLOAD", data.get("max_payload", DEFAULT_MAX_PAYLOAD)),
            payload_from,
        ),
        source=source,
        root=str(root),
    )  # fmt: skip


def _env_overrides(env: Mapping[str, str], names: list[str]) -> dict[str, dict[str, str]]:
    """``{connection: {key: value}}`` from ``CONVEYOR_<NAME>_<KEY>``; see the module's rule."""
    exact = {f"CONVEYOR_{n.upper()}_{k.upper()}": (n, k) for n in names for k in _CONN_KEYS}
    found: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if var in TOP_LEVEL_ENV or not var.startswith("CONVEYOR_"):
            continue
        if var in exact:
            name, key = exact[var]
            found.setdefault(name, {})[key] = value
            continue
        # with connections a and a_b, CONVEYOR_A_B_X is a_b's: the longest name that fits
        owners = [n for n in names if var.startswith(f"CONVEYOR_{n.upper()}_")]
        owner = max(owners, key=len, default=None)
        if owner is not None:
            keys = ", ".join(f"CONVEYOR_{owner.upper()}_{k.upper()}" for k in sorted(_CONN_KEYS))
            raise ConfigError(
                f"environment {var}: unknown setting of connection {owner!r}; known: {keys}"
            )
    return found


def _as_dict(c: ConnectionSettings) -> dict[str, Any]:
    return {"url": c.url, "retry_after": c.retry_after, "queue": c.queue,
            "block_for": c.block_for, "prefix": c.prefix}  # fmt: skip


def _connection(
    name: str, raw: Any, root: Path, where: str, labels: Mapping[str, str] | None = None
) -> ConnectionSettings:
    """The connection from its table; ``labels`` name where keys came from other than ``where``
    (the environment variable), so an error points at what to fix."""
    label = {key: f"{where}.{key}" for key in _CONN_KEYS} | dict(labels or {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with at least 'url'")
    unknown = set(raw) - _CONN_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; known: {sorted(_CONN_KEYS)}"
        )
    url = raw.get("url")
    if not isinstance(url, str) or "://" not in url:
        shown = mask_url(url) if isinstance(url, str) else url
        raise ConfigError(
            f"{label['url']}: expected a URL like sqlite:///conveyor.db, got {shown!r}"
        )
    if unencoded_userinfo(url):
        raise ConfigError(
            f"{label['url']}: its user name or password (before the last '@') holds '/', '?' or "
            "'#' as it is; percent-encode them (%2F, %3F, %23; an '@' in the query as %40), or "
            "a piece of the password is read as the host"
        )
    scheme = url.partition("://")[0].lower()
    if scheme not in KNOWN_SCHEMES:
        raise ConfigError(
            f"{label['url']}: unknown scheme {scheme!r}; known: {', '.join(KNOWN_SCHEMES)}"
        )
    if scheme == "sqlite":
        url = _sqlite_url(url, root)
    block_for = raw.get("block_for")
    return ConnectionSettings(
        name=name,
        url=url,
        retry_after=_number(raw.get("retry_after", 30.0), label["retry_after"]),
        queue=_queue(raw.get("queue", "default"), label["queue"]),
        block_for=None if block_for in (None, "") else _number(block_for, label["block_for"]),
        prefix=str(raw.get("prefix", "conveyor")),
    )


def _queue(value: Any, where: str) -> str:
    try:
        return check_queue_name(value)
    except InvalidQueueName as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _sqlite_url(url: str, root: Path) -> str:
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url.partition("://")[2]
    if path in ("", ":memory:"):
        return "sqlite:///:memory:"
    full = Path(path) if Path(path).is_absolute() else root / path
    return f"sqlite:///{full}"


def _number(value: Any, where: str) -> float:
    """A finite, positive number of seconds (``true`` is not one, though Python says 1)."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{where}: expected a finite positive number of seconds, got {value!r}")
    return number


def _count(value: Any, where: str) -> int:
    """A positive whole number: ``1.5`` or ``-1`` bytes is a mistake, not something to round."""
    if isinstance(value, str):
        value = value.strip()
        digits = value.isascii() and value.isdigit() and len(value) <= 18  # below 2**63
        number = int(value) if digits else None
    else:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None or number <= 0:
        raise ConfigError(f"{where}: expected a positive whole number, got {value!r}")
    return number


def _modules(value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{source}: 'app' must be a module name or a list of them")
    return tuple(str(v).strip() for v in value if str(v).strip())

"""Connecting to Redis from a URL, and running commands through a bounded retry window.

URLs::

    redis://[[user]:password@]host[:port][/db][?option=value...]
    rediss://...                                        TLS
    redis+cluster://[[user]:password@]host:port[,host:port...][?...]
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db][?...]

Options are redis-py's connection settings (``socket_timeout``, ``health_check_interval``,
``max_connections``, ``ssl_*`` ...) plus ``retry_window``: how long a command keeps retrying a
lost connection before ``ConnectionUnavailable`` is raised. redis-py's own retries are off, so
that this one window bounds every call, a dispatch included.

A command Redis refuses (a script that found a key of the wrong type or a corrupt count, a full
memory under ``maxmemory``, a failing disk under ``stop-writes-on-bgsave-error``) raises
``StorageUnavailable``, a ``ConnectionUnavailable``: the scripts check before they write, so
nothing changed, and a worker keeps its job and retries with its backoff, never dies of it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote

import redis
from redis import exceptions as rex
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from ... import forks
from ...errors import ConfigError, ConnectionUnavailable, StorageUnavailable
from ...urls import mask_url
from .scripts import Script, load_all


def _c_packer() -> Callable[[tuple[Any, ...]], bytes] | None:
    """hiredis's command packer (part of the redis extra): a quarter of redis-py's cost."""
    try:
        from hiredis import pack_command
    except ImportError:  # pragma: no cover - installed with conveyor[redis]
        return None
    return cast(Callable[[tuple[Any, ...]], bytes], pack_command)


_pack_command = _c_packer()

log = logging.getLogger("conveyor.redis")
T = TypeVar("T")

MODES = {
    "redis": ("single", False), "rediss": ("single", True),
    "redis+cluster": ("cluster", False), "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False), "rediss+sentinel": ("sentinel", True),
}  # fmt: skip
SCHEMES = tuple(MODES)

_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_OPTIONS: dict[str, Callable[[str], Any]] = {
    "db": int, "socket_timeout": float, "socket_connect_timeout": float,
    "socket_keepalive": lambda v: _BOOL[v.lower()], "max_connections": int,
    "health_check_interval": float, "client_name": str, "protocol": int,
    "ssl_cert_reqs": str, "ssl_ca_certs": str, "ssl_ca_path": str, "ssl_certfile": str,
    "ssl_keyfile": str, "ssl_check_hostname": lambda v: _BOOL[v.lower()],
}  # fmt: skip
DEFAULTS: dict[str, Any] = {
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
    "socket_keepalive": True,
    "health_check_interval": 10.0,
    "client_name": "conveyor",
}
DEFAULT_RETRY_WINDOW = 5.0
#: error replies that say the storage refuses for now: the scripts' own check (lib_check.lua),
#: a server out of memory, unable to persist, or a replica
_REFUSALS = ("CORRUPT", "OOM", "MISCONF", "READONLY", "WRONGTYPE", "NOREPLICAS", "BUSY")

#: a lost or refused connection, a server still loading, a cluster mid-failover: worth a retry
TRANSIENT: tuple[type[BaseException], ...] = (
    rex.ConnectionError, rex.TimeoutError, rex.ClusterDownError, rex.TryAgainError,
    rex.ReadOnlyError, rex.SlotNotCoveredError,
)  # fmt: skip


#: what ends a blocking wait early without failing the claim that follows it
ENDS_A_WAIT: tuple[type[BaseException], ...] = (*TRANSIENT, rex.ResponseError)


def _keepalive() -> dict[int, int]:
    """Probe an idle connection after 30 s, so a half-open one is noticed within a minute."""
    wanted = {"TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3}
    return {getattr(socket, k): v for k, v in wanted.items() if hasattr(socket, k)}


@dataclass(frozen=True)
class Target:
    """What a URL names: how to reach the server(s) and the client options."""

    mode: str
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    service: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    retry_window: float = DEFAULT_RETRY_WINDOW


def parse_url(url: str) -> Target:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in MODES:
        raise ConfigError(
            f"Redis URL must start with one of {', '.join(SCHEMES)}: {mask_url(url)!r}"
        )
    mode, tls = MODES[scheme.lower()]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    options = _query_options(query, url)
    retry_window = float(options.pop("retry_window", DEFAULT_RETRY_WINDOW))
    if userinfo:
        user, _, password = userinfo.partition(":")
        options.update(
            {k: unquote(v) for k, v in (("username", user), ("password", password)) if v}
        )
    nodes = tuple(_host_port(h, url) for h in hosts.split(",")) if hosts else (("127.0.0.1", 6379),)
    parts = [p for p in path.split("/") if p]
    service = None
    if mode == "sentinel":
        if not parts:
            raise ConfigError(
                f"Redis Sentinel URL needs the service name as its path: {mask_url(url)!r}"
            )
        service = unquote(parts.pop(0))
    if parts:
        options.setdefault("db", _parse(int, parts[0], "database number", url))
    if mode == "cluster" and options.get("db", 0) != 0:
        raise ConfigError(f"Redis Cluster has only database 0: {mask_url(url)!r}")
    if mode == "single" and len(nodes) > 1:
        raise ConfigError(
            f"a redis:// URL names one server; use redis+cluster:// for several: {mask_url(url)!r}"
        )
    return Target(mode, tls, nodes, service, options, retry_window)


def _query_options(query: str, url: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "retry_window":
            options[key] = _parse(float, value, key, url)
            if options[key] <= 0:
                raise ConfigError(f"retry_window must be positive in Redis URL {mask_url(url)!r}")
        elif key in _OPTIONS:
            options[key] = _parse(_OPTIONS[key], value, key, url)
        else:
            known = ", ".join(sorted((*_OPTIONS, "retry_window")))
            raise ConfigError(
                f"unknown option {key!r} in Redis URL {mask_url(url)!r}; known: {known}"
            )
    return options


def _parse(kind: Callable[[str], Any], value: str, what: str, url: str) -> Any:
    try:
        return kind(value)
    except (KeyError, TypeError, ValueError):
        # a port is cut from the authority, where a piece of a badly written password may land
        shown = "" if what == "port" else f" {value!r}"
        raise ConfigError(f"invalid {what}{shown} in Redis URL {mask_url(url)!r}") from None


def _host_port(item: str, url: str) -> tuple[str, int]:
    if item.startswith("["):
        host, _, port = item[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = item.partition(":")
    return unquote(host) or "127.0.0.1", _parse(int, port, "port", url) if port else 6379


def make_client(target: Target) -> Any:
    """A pooled redis-py client for the target, with Conveyor's defaults under the URL's own."""
    kwargs = {**DEFAULTS, "socket_keepalive_options": _keepalive(), **target.options}
    kwargs["retry"] = Retry(NoBackoff(), 0)
    if target.tls:
        kwargs["ssl"] = True
    if target.mode == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=nodes, **kwargs)
    if target.mode == "sentinel":
        timeouts = {k: kwargs[k] for k in ("socket_timeout", "socket_connect_timeout")}
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs=timeouts, **kwargs)  # type: ignore[no-untyped-call, unused-ignore]
        return sentinel.master_for(target.service or "")  # type: ignore[no-untyped-call, unused-ignore]
    host, port = target.nodes[0]
    return redis.Redis(host=host, port=port, **kwargs)


class RedisConnection:
    """One client (pooled connections) plus the scripts and the retry rule every call follows."""

    def __init__(self, target: Target, describe: str) -> None:
        self._target = target
        self._client: Any = None
        self._idle: list[Any] = []
        self._fork = forks.generation()
        self.cluster = target.mode == "cluster"
        self.retry_window = target.retry_window
        self.describe = describe
        self.scripts: dict[str, Script] = load_all()
        timeout = {**DEFAULTS, **target.options}.get("socket_timeout")
        #: longest single blocking wait: a blocked read must end before the socket times out
        self.block_cap = max(0.05, float(timeout) - 0.5) if timeout else 30.0

    @property
    def client(self) -> Any:
        """The client, made on first use: a cluster client must reach a node to be made."""
        if self._client is None:
            try:
                self._client = make_client(self._target)
            except rex.RedisClusterException as exc:
                raise rex.ConnectionError(str(exc)) from exc
        return self._client

    def run(self, op: Callable[[], T]) -> T:
        """Run ``op``, retrying a lost connection for up to ``retry_window`` seconds.

        Each retry gets a fresh connection from the pool (redis-py drops a broken one). A
        server that lost its script cache (restart, failover) gets the scripts again. A refusal
        is raised at once as ``StorageUnavailable`` (see the module's docstring).
        """
        deadline: float | None = None
        pause = 0.02
        reloads = 0
        while True:
            try:
                return op()
            except rex.NoScriptError:
                reloads += 1
                if reloads > 3:
                    raise
                self.load_scripts()
            except TRANSIENT as exc:
                now = time.monotonic()
                deadline = deadline or now + self.retry_window
                if now >= deadline:
                    raise ConnectionUnavailable(
                        f"{self.describe} unavailable for {self.retry_window:g}s: {exc}"
                    ) from exc
                log.debug("%s: %s; retrying", self.describe, exc)
                time.sleep(min(pause, deadline - now))
                pause = min(pause * 2, 0.5)
            except rex.ResponseError as exc:
                if not str(exc).startswith(_REFUSALS):
                    # not a refusal the scripts or the server mean to make (a script that
                    # failed where it should not): retried like one, but never quietly
                    log.error("%s: unexpected error reply: %s", self.describe, exc)
                raise StorageUnavailable(f"{self.describe} refused the command: {exc}") from exc

    def eval(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha = self.scripts[name].sha
        if self.cluster:
            return self.run(lambda: self.client.evalsha(sha, len(keys), *keys, *args))
        return self.run(lambda: self._direct(("EVALSHA", sha, len(keys), *keys, *args))[0])

    def eval_many(
        self, name: str, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Several calls of one script in one write (one server only); all are sent again if
        any fails, so they must be safe to repeat."""
        sha = self.scripts[name].sha
        commands = [("EVALSHA", sha, len(keys), *keys, *args) for keys, args in calls]
        return self.run(lambda: self._direct(*commands))

    def eval_after_wait(
        self, lists: Sequence[str], seconds: float, name: str, keys: Sequence[str],
        args: Sequence[Any],
    ) -> Any:  # fmt: skip
        """``BLPOP lists seconds`` and then a script, written together (one server only).

        Redis holds a blocked client's next command until the wait ends, then runs it at
        once: a worker woken by a dispatch gets its claim in the same reply. A failure of
        the wait, or a refusal of either, only ends it early; the script then runs alone, under
        the retry rule.
        """
        wait = ("BLPOP", *lists, repr(float(seconds)))
        script = ("EVALSHA", self.scripts[name].sha, len(keys), *keys, *args)
        try:
            return self._direct(wait, script)[1]
        except rex.NoScriptError:
            pass
        except ENDS_A_WAIT as exc:
            log.debug("%s: wait ended early: %s", self.describe, exc)
        return self.eval(name, keys, args)

    def _direct(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Commands written at once to a connection from this object's own free list.

        On loopback, redis-py's pool checkout and command wrappers cost more CPU than the
        round trip itself; scripts need none of them (no reply callbacks), so the hot path
        talks to a connection directly. A connection that failed is dropped, never reused;
        one whose command was refused is reused once every reply has been read.
        """
        if self._fork != forks.generation():
            self._idle, self._fork = [], forks.generation()
        try:
            conn = self._idle.pop()
        except IndexError:
            pool = self.client.connection_pool
            conn = pool.connection_class(**pool.connection_kwargs)
        replies: list[Any] = []
        refused: rex.ResponseError | None = None
        try:
            if _pack_command is not None:
                conn.send_packed_command([b"".join(map(_pack_command, commands))])
            else:
                conn.send_packed_command(conn.pack_commands(commands))
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except rex.ResponseError as exc:
                    refused = refused or exc
                    replies.append(exc)
        except BaseException:
            conn.disconnect()
            raise
        self._idle.append(conn)
        if refused is not None:
            raise refused
        return replies

    def load_scripts(self) -> None:
        for script in self.scripts.values():
            self.client.script_load(script.source)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.close()
        except rex.RedisError:
            log.debug("closing the Redis client failed", exc_info=True)

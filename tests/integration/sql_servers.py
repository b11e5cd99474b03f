"""Throwaway PostgreSQL and MariaDB servers for the tests that stop and restart a server.

Each lives in a temporary folder on a free loopback port, with durability switched off (the
tests restart it cleanly; they do not pull the plug), and is removed at the end. The machine's
own servers are never touched. If the server binaries are not installed the tests that need
one skip, naming what is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql


class Unavailable(Exception):
    """This machine cannot run a throwaway server; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _run(cmd: list[str], timeout: float = 60.0) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise Unavailable(f"{' '.join(cmd[:3])} failed: {done.stderr.strip()[-500:]}")


class ThrowawayPostgres:
    """``initdb`` + ``pg_ctl`` in a temp folder; as root, run as the ``postgres`` user."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [
            p for p in [shutil.which("initdb")] if p
        ]
        if not found:
            raise Unavailable("initdb not found (install the PostgreSQL server package)")
        self.bin = Path(found[-1]).parent
        self.prefix: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
        if os.geteuid() == 0:  # initdb refuses to run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' user") from None
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        _run([*self.prefix, str(self.bin / "initdb"), "-D", str(self.folder / "data"),
              "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c synchronous_commit=off"
        )
        _run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"),
              "-o", options, "-l", str(self.folder / "server.log"), "-w", "start"])  # fmt: skip

    def stop(self) -> None:
        _run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"),
              "-m", "fast", "-w", "stop"])  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(Unavailable):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayMariaDB:
    """``mariadb-install-db`` then ``mariadbd`` on its own datadir, socket and port."""

    def __init__(self) -> None:
        self.server = shutil.which("mariadbd") or shutil.which("mysqld", path="/usr/sbin")
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if not self.server or not install:
            raise Unavailable("mariadbd / mariadb-install-db not found (install mariadb-server)")
        self.folder = Path(tempfile.mkdtemp(prefix="conveyor-mariadb-"))
        self.as_root = ["--user=root"] if os.geteuid() == 0 else []
        self.port = free_port()
        self.url = f"mysql://root@127.0.0.1:{self.port}/conveyor"
        self.proc: subprocess.Popen[bytes] | None = None
        _run([install, "--no-defaults", f"--datadir={self.folder / 'data'}", "--skip-test-db",
              "--auth-root-authentication-method=normal", *self.as_root])  # fmt: skip

    def start(self) -> None:
        log = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [self.server, "--no-defaults", f"--datadir={self.folder / 'data'}",
             f"--port={self.port}", f"--socket={self.folder / 'sock'}", "--bind-address=127.0.0.1",
             f"--pid-file={self.folder / 'pid'}", "--innodb-flush-log-at-trx-commit=2",
             "--skip-name-resolve", *self.as_root],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not _accepting(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Unavailable(f"mariadbd did not start: see {self.folder / 'server.log'}")
            time.sleep(0.05)
        with pymysql.connect(unix_socket=str(self.folder / "sock"), user="root") as conn:
            conn.cursor().execute("CREATE DATABASE IF NOT EXISTS conveyor")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)

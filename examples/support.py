"""What both examples need around the application: a real SMTP server on this machine, and
``conveyor work`` processes. Nothing here is Conveyor API; it only sets the stage."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

BOUNCING_DOMAIN = "bounces.test"


@dataclass
class Mailbox:
    """An SMTP server's handler: keeps every message, refuses addresses at BOUNCING_DOMAIN."""

    messages: list[Message] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.endswith("@" + BOUNCING_DOMAIN):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A local SMTP server on a free port; its address goes to the jobs through SMTP_PORT."""
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    os.environ["SMTP_HOST"], os.environ["SMTP_PORT"] = "127.0.0.1", str(port)
    try:
        yield mailbox, port
    finally:
        controller.stop()


def write_config(folder: Path, app_module: str) -> None:
    """The project's conveyor.toml: an SQLite queue in the folder, and the module of the jobs."""
    (folder / "conveyor.toml").write_text(
        f'app = ["{app_module}"]\n\n[connections.database]\nurl = "sqlite:///conveyor.db"\n'
    )


@contextmanager
def workers(folder: Path, code: Path, count: int = 2) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``conveyor work`` processes in ``folder``, the application code importable; SIGTERM at
    the end lets each finish its job and exit."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, (str(code), os.environ.get("PYTHONPATH")))),
    )
    log = (folder / "workers.log").open("ab")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "conveyor", "work", "--sleep", "0.5", "--tries", "3"],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g}s")
        time.sleep(0.1)

"""Run the newsletter from start to end: ``python examples/newsletter/run.py``.

Seeds users in an SQLite table, starts a local SMTP server and two workers, sends the newsletter
as a batch, and prints the batch status and what the mail server received. ``--dir DIR`` keeps
the data in DIR; ``status BATCH_ID --dir DIR`` prints the status of a batch there later.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import newsletter  # noqa: E402
import support  # noqa: E402

from conveyor import Conveyor, find_batch, load_settings, set_app  # noqa: E402

USERS = [
    ("ada@example.com", 1, 0), ("grace@example.com", 1, 0), ("linus@example.com", 1, 0),
    ("barbara@example.com", 1, 0), ("ken@example.com", 1, 0), ("dennis@example.com", 1, 0),
    ("gone@example.com", 0, 0),                         # unsubscribed: not in the batch
    ("old@example.com", 1, 1),                          # bounced before: not in the batch
    (f"nobody@{support.BOUNCING_DOMAIN}", 1, 0),        # the server refuses it: bounces now
    ("late@example.com", 1, 0),                         # unsubscribes after the dispatch
]  # fmt: skip


@dataclass
class Result:
    batch_id: str
    status: dict[str, Any]
    mailbox: support.Mailbox
    users: list[dict[str, Any]]
    events: list[tuple[str, str]]


def open_app(folder: Path) -> Conveyor:
    os.environ["NEWSLETTER_DB"] = str(folder / "app.db")
    support.write_config(folder, "newsletter")
    app = Conveyor(load_settings(folder, env={}))
    set_app(app)
    return app


def run(folder: Path, workers: int = 2) -> Result:
    app = open_app(folder)
    newsletter.create_schema()
    with newsletter.db() as conn:
        conn.executemany(
            "INSERT INTO users (email, subscribed, email_bounced) VALUES (?, ?, ?)", USERS
        )
    with support.smtp_server() as (mailbox, _):
        sent = newsletter.send_newsletter("Hello", "This month: chains and batches.")
        with newsletter.db() as conn:
            conn.execute("UPDATE users SET subscribed = 0 WHERE email = 'late@example.com'")
        with support.workers(folder, HERE, workers):
            support.wait_for(
                lambda: len(events(folder)) >= 2 and find_batch(sent.id).finished(),  # type: ignore[union-attr]
                60, "the newsletter batch to finish and its callbacks to run",
            )  # fmt: skip
    status = newsletter.batch_status(sent.id)
    with newsletter.db() as conn:
        users = [dict(r) for r in conn.execute("SELECT * FROM users ORDER BY id")]
    app.close()
    return Result(sent.id, status, mailbox, users, events(folder))


def events(folder: Path) -> list[tuple[str, str]]:
    with newsletter.db() as conn:
        return [(r["kind"], r["detail"]) for r in conn.execute("SELECT * FROM events")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "status"])
    parser.add_argument("batch_id", nargs="?")
    parser.add_argument(
        "--dir", type=Path, default=None, help="data folder (default: a new temp one)"
    )
    args = parser.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="newsletter-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.command == "status":
        open_app(folder)
        print(json.dumps(newsletter.batch_status(args.batch_id), indent=2))
        return 0
    result = run(folder)
    print(f"batch {result.batch_id} (data in {folder})")
    print(json.dumps(result.status, indent=2))
    for kind, detail in result.events:
        print(f"{kind:>8}: {detail}")
    print(f"mail server received {len(result.mailbox.messages)} message(s):")
    for message in result.mailbox.messages:
        print(f"  to {message['To']}: {message['Subject']}")
    bounced = [u["email"] for u in result.users if u["email_bounced"]]
    print(f"bounced addresses: {', '.join(bounced)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

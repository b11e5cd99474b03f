"""The chapter's CSV import: one job reads the file and batches one job per line.

Each row creates or updates a user by email. An invalid row fails with a reason that names its
line and does not stop the others (``allow_failures``). When every row has run, a summary
(created, updated, failed, with the reasons) is mailed to the admin by a job callback.
"""

from __future__ import annotations

import csv
import os
import re
import smtplib
import sqlite3
from email.message import EmailMessage
from pathlib import Path

from conveyor import Job, batch, current_app

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)


def db() -> sqlite3.Connection:
    """The application's own database (not the queue's), named by IMPORT_DB."""
    conn = sqlite3.connect(os.environ.get("IMPORT_DB", "app.db"), timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def create_schema() -> None:
    with db() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, name TEXT)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, path TEXT, batch_id TEXT)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS import_rows (import_id INTEGER, line INTEGER, result TEXT,"
            " PRIMARY KEY (import_id, line))"
        )


class ImportUserRow(Job):
    import_id: int
    line: int
    email: str
    name: str

    tries = 1  # a bad row stays bad: fail it at once, with its reason

    def handle(self) -> None:
        if not EMAIL.match(self.email):
            raise ValueError(f"line {self.line}: invalid email {self.email!r}")
        if not self.name.strip():
            raise ValueError(f"line {self.line}: the name is empty")
        with db() as conn:
            found = conn.execute("SELECT 1 FROM users WHERE email = ?", (self.email,)).fetchone()
            conn.execute(
                "INSERT INTO users (email, name) VALUES (?, ?)"
                " ON CONFLICT (email) DO UPDATE SET name = excluded.name",
                (self.email.lower(), self.name.strip()),
            )
            result = "updated" if found else "created"
            conn.execute(
                "INSERT OR REPLACE INTO import_rows VALUES (?, ?, ?)",
                (self.import_id, self.line, result),
            )


class MailImportSummary(Job):
    """The batch's ``finally`` callback: a Job instance, which reaches its batch."""

    import_id: int
    admin: str

    def handle(self) -> None:
        batch = self.batch()
        assert batch is not None
        with db() as conn:
            counts = dict(
                conn.execute(
                    "SELECT result, COUNT(*) FROM import_rows WHERE import_id = ? GROUP BY result",
                    (self.import_id,),
                ).fetchall()
            )
        failed = current_app().driver(batch.connection).failed
        reasons = [failed.get(job_id) for job_id in batch.failed_job_ids]
        lines = [
            f"Import #{self.import_id}: {counts.get('created', 0)} created, "
            f"{counts.get('updated', 0)} updated, {batch.failed_jobs} failed.",
            *(f"  {r.exception.strip().splitlines()[-1]}" for r in reasons if r is not None),
        ]
        send_mail(self.admin, f"Import #{self.import_id} finished", "\n".join(lines))


class ImportCsv(Job):
    import_id: int
    admin: str

    def handle(self) -> None:
        with db() as conn:
            path = conn.execute(
                "SELECT path FROM imports WHERE id = ?", (self.import_id,)
            ).fetchone()[0]
        with Path(path).open(newline="") as fh:
            rows = list(enumerate(csv.DictReader(fh), start=2))  # line 1 is the header
        jobs = [
            ImportUserRow(import_id=self.import_id, line=line, email=row.get("email") or "",
                          name=row.get("name") or "")
            for line, row in rows
        ]  # fmt: skip
        started = (
            batch(jobs)
            .name(f"import #{self.import_id}: {Path(path).name}")
            .allow_failures()
            .finally_(MailImportSummary(import_id=self.import_id, admin=self.admin))
            .dispatch()
        )
        with db() as conn:
            conn.execute(
                "UPDATE imports SET batch_id = ? WHERE id = ?", (started.id, self.import_id)
            )


def start_import(path: Path, admin: str) -> int:
    """What the upload handler does: record the import, queue the job that reads the file."""
    with db() as conn:
        import_id = conn.execute("INSERT INTO imports (path) VALUES (?)", (str(path),)).lastrowid
    assert import_id is not None
    ImportCsv(import_id=import_id, admin=admin).dispatch()
    return import_id


def send_mail(to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "imports@example.com", to, subject
    message.set_content(body)
    host, port = os.environ.get("SMTP_HOST", "127.0.0.1"), int(os.environ.get("SMTP_PORT", "25"))
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)

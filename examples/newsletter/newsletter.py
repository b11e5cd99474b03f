"""The chapter's newsletter: one job per subscribed, non-bounced user, sent as one batch.

A user who unsubscribes after the dispatch has their job deleted from the batch without
failing; an address the mail server refuses fails its job at once, and ``failed()`` marks the
user as bounced. ``batch_status()`` is the chapter's ``batchStatus`` endpoint.
"""

from __future__ import annotations

import logging
import os
import smtplib
import sqlite3
from email.message import EmailMessage
from typing import Any

from conveyor import Batch, Job, JobFailure, batch, find_batch

log = logging.getLogger("newsletter")


def db() -> sqlite3.Connection:
    """The application's own database (not the queue's), named by NEWSLETTER_DB."""
    conn = sqlite3.connect(os.environ.get("NEWSLETTER_DB", "app.db"), timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def create_schema() -> None:
    with db() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT UNIQUE,"
            " subscribed INTEGER NOT NULL DEFAULT 1, email_bounced INTEGER NOT NULL DEFAULT 0,"
            " newsletters_sent INTEGER NOT NULL DEFAULT 0)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS events (kind TEXT, batch_id TEXT, detail TEXT)")


def note(kind: str, batch_id: str, detail: str) -> None:
    """What the batch callbacks report (the chapter logs them; here they are kept to show)."""
    log.info("%s %s: %s", kind, batch_id, detail)
    with db() as conn:
        conn.execute("INSERT INTO events VALUES (?, ?, ?)", (kind, batch_id, detail))


def send_mail(to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "news@example.com", to, subject
    message.set_content(body)
    host, port = os.environ.get("SMTP_HOST", "127.0.0.1"), int(os.environ.get("SMTP_PORT", "25"))
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(message)


class SendNewsletterEmail(Job):
    user_id: int
    subject: str
    content: str

    tries = 3
    backoff = [1, 3]
    timeout = 120

    def handle(self) -> None:
        with db() as conn:
            user = conn.execute("SELECT * FROM users WHERE id = ?", (self.user_id,)).fetchone()
        if user is None or not user["subscribed"]:
            self.delete()  # unsubscribed since the dispatch: done, not failed
            return
        try:
            send_mail(user["email"], self.subject, self.content)
        except smtplib.SMTPRecipientsRefused as exc:
            self.fail(exc)  # the server refused the address: retrying cannot help
            return
        with db() as conn:
            conn.execute(
                "UPDATE users SET newsletters_sent = newsletters_sent + 1 WHERE id = ?",
                (self.user_id,),
            )

    def failed(self, exc: BaseException) -> None:
        with db() as conn:
            conn.execute("UPDATE users SET email_bounced = 1 WHERE id = ?", (self.user_id,))
        log.error("newsletter to user %s failed: %s", self.user_id, exc)


def newsletter_sent(batch: Batch) -> None:
    note("then", batch.id, f"Newsletter sent to {batch.total_jobs} users")


def newsletter_failed(batch: Batch, error: JobFailure) -> None:
    note("catch", batch.id, f"Newsletter batch failed: {error}")


def newsletter_finished(batch: Batch) -> None:
    note("finally", batch.id, f"{batch.processed_jobs} sent or skipped, {batch.failed_jobs} failed")


def send_newsletter(subject: str, content: str) -> Batch:
    """The chapter's ``NewsletterController::send``: one batch, returned at once."""
    with db() as conn:
        users = conn.execute(
            "SELECT id FROM users WHERE subscribed = 1 AND email_bounced = 0 ORDER BY id"
        ).fetchall()
    jobs = [SendNewsletterEmail(user_id=u["id"], subject=subject, content=content) for u in users]
    return (
        batch(jobs)
        .name(f"newsletter: {subject}")
        .allow_failures()  # one bounced address must not stop the newsletter for everyone
        .then(newsletter_sent)
        .catch(newsletter_failed)
        .finally_(newsletter_finished)
        .dispatch()
    )


def batch_status(batch_id: str) -> dict[str, Any]:
    """The chapter's ``batchStatus`` endpoint."""
    found = find_batch(batch_id)
    if found is None:
        return {"error": f"no batch {batch_id}"}
    return {
        "progress": found.progress(),
        "total_jobs": found.total_jobs,
        "pending_jobs": found.pending_jobs,
        "failed_jobs": found.failed_jobs,
        "finished": found.finished(),
    }

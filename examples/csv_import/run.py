"""Run the CSV import from start to end: ``python examples/csv_import/run.py``.

Writes a small CSV (two rows invalid, one updating an existing user), starts a local SMTP server
and two workers, queues the import and prints the summary the admin receives by mail.
``--csv FILE`` imports your own file (columns: email, name); ``--dir DIR`` keeps the data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import importer  # noqa: E402
import support  # noqa: E402

from conveyor import Conveyor, load_settings, set_app  # noqa: E402

ADMIN = "admin@example.com"
SAMPLE = """email,name
ada@example.com,Ada Lovelace
grace@example.com,Grace Hopper
not-an-email,Nobody
linus@example.com,Linus Torvalds
barbara@example.com,
ken@example.com,Ken Thompson
"""


@dataclass
class Result:
    import_id: int
    summary: Message
    users: list[dict[str, Any]]


def run(folder: Path, csv_path: Path | None = None, workers: int = 2) -> Result:
    os.environ["IMPORT_DB"] = str(folder / "app.db")
    support.write_config(folder, "importer")
    app = Conveyor(load_settings(folder, env={}))
    set_app(app)
    importer.create_schema()
    with importer.db() as conn:  # an existing user: the import updates her name
        conn.execute("INSERT OR IGNORE INTO users VALUES ('grace@example.com', 'G. Hopper')")
    if csv_path is None:
        csv_path = folder / "users.csv"
        csv_path.write_text(SAMPLE)
    with support.smtp_server() as (mailbox, _):
        import_id = importer.start_import(csv_path, ADMIN)
        with support.workers(folder, HERE, workers):
            support.wait_for(lambda: mailbox.to(ADMIN), 60, "the import summary mail")
    with importer.db() as conn:
        users = [dict(r) for r in conn.execute("SELECT * FROM users ORDER BY email")]
    app.close()
    return Result(import_id, mailbox.to(ADMIN)[0], users)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=None, help="CSV file with email,name columns")
    parser.add_argument(
        "--dir", type=Path, default=None, help="data folder (default: a new temp one)"
    )
    args = parser.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="csv-import-"))
    folder.mkdir(parents=True, exist_ok=True)
    result = run(folder, args.csv.resolve() if args.csv else None)
    print(f"import #{result.import_id} (data in {folder})")
    print(f"mail to {result.summary['To']}: {result.summary['Subject']}")
    print(result.summary.get_payload().rstrip())
    print("users now:")
    for user in result.users:
        print(f"  {user['email']:<24} {user['name']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

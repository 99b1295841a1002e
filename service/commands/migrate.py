"""``make migrate``: bring the history database to the newest schema (or to REVISION).

python -m service.commands.migrate migrate    # upgrade to head (the server also does this at start-up)
python -m service.commands.migrate downgrade REVISION # e.g. base: drop the history table
python -m service.commands.migrate current    # the revision the database is at
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from records.db import Database, redact_url
from service.settings import load_settings


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.commands.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("migrate", "downgrade", "current"))
    parser.add_argument("revision", nargs="?", default="head")
    args = parser.parse_args(argv)
    url = load_settings().history_database_url
    database = Database(url)
    try:
        if args.action == "migrate":
            await database.migrate(args.revision)
        elif args.action == "downgrade":
            await database.downgrade(args.revision)
        print(f"{redact_url(url)}: at revision {await database.current_revision() or 'base (empty)'}")
    finally:
        await database.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""The history database: engine, migrations, and every query the service runs.

Any SQLAlchemy async URL: ``sqlite+aiosqlite:///data/history.db`` (the embedded default, created on
first run) or ``postgresql+asyncpg://user:password@host/db`` for several replicas. Rows are written
insert-or-ignore on (symbol, bucket), so replicas recording the same interval never duplicate a row.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Column, MetaData, String, Table, and_, delete, event, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from records.models import HORIZONS, SignalRow
from records.recorded import RecordedFactor, RecordedSignal

MIGRATIONS = Path(__file__).with_name("migrations")
# Random secrets the replicas sharing this database share (the page token key): name -> hex value
# (created by migration 0005).
_SECRETS = Table(
    "service_secrets",
    MetaData(),
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)
_MIGRATION_LOCK = 4_271_193  # PostgreSQL advisory lock id: replicas starting together migrate one at a time


def redact_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable DATABASE_URL>"


def _alembic(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@dataclass(frozen=True, slots=True)
class Outcome:
    computed_ms: int
    signal: str
    return_pct: float


def _recorded(row: Row[Any]) -> RecordedSignal:
    return RecordedSignal(
        id=row.id,
        symbol=row.symbol,
        bucket=row.bucket,
        computed_ms=row.computed_ms,
        score=row.score,
        signal=row.signal,
        confidence=row.confidence,
        coverage=row.coverage,
        price=row.price,
        config_hash=row.config_hash,
        profile=row.profile,
        factors=tuple(RecordedFactor.from_json(f) for f in row.factors),
        returns_pct={horizon: getattr(row, f"return_{horizon}_pct") for horizon in HORIZONS},
    )


class Database:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.dialect = parsed.get_backend_name()
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.dialect == "sqlite":
            options["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    # ---- migrations ----------------------------------------------------------------------------

    async def migrate(self, revision: str = "head") -> None:
        await self._alembic("upgrade", revision)

    async def downgrade(self, revision: str) -> None:
        await self._alembic("downgrade", revision)

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as connection:
            exists = await connection.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
            if not exists:
                return None
            row = (await connection.execute(text("SELECT version_num FROM alembic_version"))).first()
            return None if row is None else str(row[0])

    async def _alembic(self, action: str, revision: str) -> None:
        async with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))

            def run(sync: Connection) -> None:
                getattr(command, action)(_alembic(sync), revision)

            await connection.run_sync(run)

    # ---- secrets -------------------------------------------------------------------------------

    async def shared_secret(self, name: str) -> str:
        """A random secret kept under ``name`` (table ``service_secrets``, migration 0005): made by
        the first replica to ask, read by the others (insert-or-ignore, then read back: two replicas
        asking at once keep the same one)."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(_SECRETS)
                .values(name=name, value=secrets.token_hex(32))
                .on_conflict_do_nothing(index_elements=["name"])
            )
            value = (await connection.execute(select(_SECRETS.c.value).where(_SECRETS.c.name == name))).scalar_one()
        return str(value)

    # ---- writes --------------------------------------------------------------------------------

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert-or-ignore on (symbol, profile, bucket): a row another replica already wrote is skipped."""
        if not rows:
            return
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(SignalRow).on_conflict_do_nothing(index_elements=["symbol", "profile", "bucket"])
        async with self.engine.begin() as connection:
            await connection.execute(statement, list(rows))

    async def set_return(self, horizon: str, values: Sequence[tuple[int, float]]) -> None:
        """Fill one horizon's forward return; a value already there is kept (idempotent)."""
        if not values:
            return
        column = getattr(SignalRow, f"return_{horizon}_pct")
        async with self.engine.begin() as connection:
            for row_id, value in values:
                await connection.execute(
                    update(SignalRow).where(SignalRow.id == row_id, column.is_(None)).values({column: value})
                )

    async def prune(self, before_ms: int, batch: int = 5000) -> int:
        """Delete rows computed before ``before_ms``, ``batch`` at a time (short transactions)."""
        removed = 0
        while True:
            async with self.engine.begin() as connection:
                ids = (
                    (
                        await connection.execute(
                            select(SignalRow.id).where(SignalRow.computed_ms < before_ms).limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return removed
                await connection.execute(delete(SignalRow).where(SignalRow.id.in_(ids)))
                removed += len(ids)
            await asyncio.sleep(0)

    # ---- reads ---------------------------------------------------------------------------------

    async def page(
        self,
        symbol: str,
        start_ms: int,
        end_ms: int,
        limit: int,
        before: tuple[int, int] | None,
        profile: str | None = None,
    ) -> list[RecordedSignal]:
        """Signals of ``symbol`` in [start, end], newest first, after the keyset ``before`` (computed_ms, id);
        only ``profile``'s when given."""
        query = select(*SignalRow.__table__.columns).where(
            SignalRow.symbol == symbol, SignalRow.computed_ms >= start_ms, SignalRow.computed_ms <= end_ms
        )
        if profile is not None:
            query = query.where(SignalRow.profile == profile)
        if before is not None:
            at, row_id = before
            query = query.where(
                or_(SignalRow.computed_ms < at, and_(SignalRow.computed_ms == at, SignalRow.id < row_id))
            )
        query = query.order_by(SignalRow.computed_ms.desc(), SignalRow.id.desc()).limit(limit)
        async with self.engine.connect() as connection:
            # Plain rows (attribute access by column name), not ORM objects: a page of 1000 is read-only.
            rows = (await connection.execute(query)).all()
        return [_recorded(row) for row in rows]

    async def due_outcomes(self, horizon: str, now_ms: int, limit: int = 500) -> list[tuple[int, str, int, float]]:
        """Rows whose ``horizon`` has passed and whose forward return is still empty:
        (id, symbol, computed_ms, decision price)."""
        column = getattr(SignalRow, f"return_{horizon}_pct")
        query = (
            select(SignalRow.id, SignalRow.symbol, SignalRow.computed_ms, SignalRow.price)
            .where(column.is_(None), SignalRow.price.is_not(None))
            .where(SignalRow.computed_ms <= now_ms - HORIZONS[horizon] * 1000)
            .order_by(SignalRow.computed_ms)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            return [(r.id, r.symbol, r.computed_ms, r.price) for r in await connection.execute(query)]

    async def outcomes(self, symbol: str, horizon: str, since_ms: int, profile: str = "seed") -> list[Outcome]:
        """Signals of ``symbol`` made by ``profile`` since ``since_ms`` whose ``horizon`` outcome is
        known, oldest first (a track record is per profile)."""
        column = getattr(SignalRow, f"return_{horizon}_pct")
        query = (
            select(SignalRow.computed_ms, SignalRow.signal, column)
            .where(SignalRow.symbol == symbol, SignalRow.computed_ms >= since_ms, column.is_not(None))
            .where(SignalRow.profile == profile)
            .order_by(SignalRow.computed_ms)
        )
        async with self.engine.connect() as connection:
            return [Outcome(r[0], r[1], float(r[2])) for r in await connection.execute(query)]

    async def count(self, symbol: str | None = None) -> int:
        query = select(func.count()).select_from(SignalRow)
        if symbol is not None:
            query = query.where(SignalRow.symbol == symbol)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def aclose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    # WAL: readers never block the writer (history pages while the recorder writes); NORMAL sync is
    # durable across application crashes, which is what a signal log needs.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()

"""Create Letta 0.16.8's schema in the Postgres named by $LETTA_PG_URI (run in .letta/venv).

The letta wheel ships no alembic migrations, so: ``Base.metadata.create_all`` plus the one
fix-up alembic would make (the ``message_seq`` sequence behind ``messages.sequence_id``).
Idempotent. LETTA_PG_URI must be set before letta is imported, or pgvector columns come out
as BINARY.
"""

import asyncio
import os
import sys

FIXUP = (
    "CREATE SEQUENCE IF NOT EXISTS message_seq OWNED BY messages.sequence_id",
    "ALTER TABLE messages ALTER COLUMN sequence_id SET DEFAULT nextval('message_seq')",
)


async def main() -> None:
    if not os.environ.get("LETTA_PG_URI"):
        sys.exit("letta_schema: LETTA_PG_URI is not set")
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from letta.orm.base import Base
    import letta.orm  # noqa: F401  (registers every table on Base.metadata)

    url = os.environ["LETTA_PG_URI"].replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        for statement in FIXUP:
            await conn.execute(text(statement))
    await engine.dispose()
    print(f"letta_schema: {len(Base.metadata.tables)} tables ready", file=sys.stderr)


asyncio.run(main())

"""Signal history on a real database: what the service answered, and how it did since.

SQLAlchemy 2 (async) with Alembic migrations; an embedded SQLite file by default, any async URL
(PostgreSQL for several replicas) through ``DATABASE_URL``. Depends on the signal domain, never on
generated code: ``service/`` maps rows to proto.
"""

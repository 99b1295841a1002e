"""Signal history: one row per symbol and interval bucket, with factors and forward returns.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("symbol", sa.String(30), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("computed_ms", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("signal", sa.String(8), nullable=False),
        sa.Column("confidence", sa.String(8), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(16), nullable=False),
        sa.Column("return_1h_pct", sa.Float(), nullable=True),
        sa.Column("return_4h_pct", sa.Float(), nullable=True),
        sa.Column("return_24h_pct", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signal_history"),
        sa.UniqueConstraint("symbol", "bucket", name="uq_signal_history_symbol_bucket"),
    )
    op.create_index("ix_signal_history_symbol_computed", "signal_history", ["symbol", "computed_ms"])


def downgrade() -> None:
    op.drop_index("ix_signal_history_symbol_computed", table_name="signal_history")
    op.drop_table("signal_history")

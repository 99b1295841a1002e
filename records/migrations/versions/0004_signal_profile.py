"""Scoring profiles: every recorded signal names the profile that made it (seed, research), one row
per coin, profile and interval bucket; rows recorded before are the seed's. Chained after 0003.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signal_history") as batch:
        batch.add_column(sa.Column("profile", sa.String(16), nullable=False, server_default="seed"))
        batch.drop_constraint("uq_signal_history_symbol_bucket", type_="unique")
        batch.create_unique_constraint("uq_signal_history_symbol_profile_bucket", ["symbol", "profile", "bucket"])


def downgrade() -> None:
    # Only the seed's rows fit the old one-row-per-bucket rule.
    op.execute("DELETE FROM signal_history WHERE profile <> 'seed'")
    with op.batch_alter_table("signal_history") as batch:
        batch.drop_constraint("uq_signal_history_symbol_profile_bucket", type_="unique")
        batch.create_unique_constraint("uq_signal_history_symbol_bucket", ["symbol", "bucket"])
        batch.drop_column("profile")

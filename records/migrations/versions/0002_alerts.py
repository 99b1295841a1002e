"""Webhook alerts: alerts, their per-coin condition states, and the delivery outbox.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("symbols", sa.JSON(), nullable=False),
        sa.Column("condition", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("webhook_url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_owner", "alerts", ["owner"])
    op.create_table(
        "alert_states",
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(30), nullable=False),
        sa.Column("state", sa.String(1), nullable=False),
        sa.Column("changed_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "symbol", name="pk_alert_states"),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("sent_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.UniqueConstraint("idempotency_key", name="uq_alert_deliveries_idempotency_key"),
    )
    op.create_index("ix_alert_deliveries_status_due", "alert_deliveries", ["status", "due_ms"])
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_alert_id", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_status_due", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_states")
    op.drop_index("ix_alerts_owner", table_name="alerts")
    op.drop_table("alerts")

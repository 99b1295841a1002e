"""Alerts hardened: a per-owner counter row for the atomic cap, each alert's delivered count, the
outbox's lease token, and no copy of the signing secret in delivery rows (the alert keeps it).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_owners",
        sa.Column("owner", sa.String(80), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_alert_owners"),
    )
    op.execute("INSERT INTO alert_owners (owner, alerts) SELECT owner, COUNT(*) FROM alerts GROUP BY owner")
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("delivered", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE alerts SET delivered = (SELECT COUNT(*) FROM alert_deliveries d"
        " WHERE d.alert_id = alerts.id AND d.status = 'sent')"
    )
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.drop_column("secret")
        batch.add_column(sa.Column("lease", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.drop_column("lease")
        batch.add_column(sa.Column("secret", sa.String(80), nullable=False, server_default=""))
    op.execute(
        "UPDATE alert_deliveries SET secret = COALESCE((SELECT a.secret FROM alerts a"
        " WHERE a.id = alert_deliveries.alert_id), '')"
    )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("delivered")
    op.drop_table("alert_owners")

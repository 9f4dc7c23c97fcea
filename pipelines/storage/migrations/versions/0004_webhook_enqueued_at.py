"""webhook deliveries record when their task was published

A delivery row is committed before its task is published (the row is the outbox); `enqueued_at` stays
null until the publish succeeded, so the sweeper can re-send the ones whose publish failed.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
    # rows from before this column: their publish outcome is unknown; count them as sent
    op.execute("UPDATE webhook_deliveries SET enqueued_at = created_at")
    op.create_index("ix_webhook_delivery_unpublished", "webhook_deliveries", ["status", "enqueued_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_unpublished", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("enqueued_at")

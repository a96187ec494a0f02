"""The outbox row names its webhook, so that it finds its credentials in the config.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column("webhook", sa.Text, comment="WebhookSpec.key; none for remediation URLs"),
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("webhook")

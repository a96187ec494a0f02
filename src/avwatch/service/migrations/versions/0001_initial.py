"""Initial schema: streams, incidents, evidence, alert outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False, comment="the StreamSpec as JSON"),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("stream", sa.String(63), nullable=False, index=True),
        sa.Column("type", sa.String(40), nullable=False, index=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("detector", sa.String(40), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("start", sa.Float, nullable=False, comment="media seconds"),
        sa.Column("end", sa.Float),
        sa.Column("started_at", WHEN, nullable=False, index=True),
        sa.Column("ended_at", WHEN),
        sa.Column("open", sa.Boolean, nullable=False, index=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("acknowledged_at", WHEN),
        sa.Column("acknowledged_by", sa.String(80)),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "incident",
            sa.String(32),
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("media_type", sa.String(80), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.Text, nullable=False, comment="webhook URL"),
        sa.Column("body", sa.Text, nullable=False, comment="the JSON sent"),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False, index=True),
        sa.Column("delivered_at", WHEN, index=True),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in ("outbox", "evidence", "incidents", "streams"):
        op.drop_table(table)

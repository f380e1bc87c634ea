"""a broadcast's message stored once; the outcomes of outbox rows the retention deleted

- ``broadcast.message``: what every recipient reads, made once when the broadcast is queued;
  its outbox rows now carry an empty payload and the broadcast's id (100,000 copies of the
  same text were 100,000 payloads). Rows queued before this revision keep their payload and
  are sent as they are: no data changes.
- ``broadcast_outcome``: the retention deletes finished outbox rows and first adds them here,
  counted by broadcast, group (0: none) and status with the first and last sending time, so
  the delivery reports (rows still there + these counts) never change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime


revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("broadcast", sa.Column("message", sa.JSON(), nullable=True))
    op.create_table(
        "broadcast_outcome",
        sa.Column("broadcast_id", sa.Integer(), sa.ForeignKey("broadcast.id"), nullable=False, autoincrement=False),
        sa.Column("group_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("broadcast_id", "group_id", "status"),
    )


def downgrade() -> None:
    # The counts of deleted rows cannot become rows again: a downgrade forgets them, and the
    # rows queued with an empty payload get their broadcast's message back.
    op.drop_table("broadcast_outcome")
    op.execute(
        "UPDATE outbox SET payload = (SELECT message FROM broadcast WHERE broadcast.id = outbox.broadcast_id) "
        "WHERE broadcast_id IS NOT NULL AND status IN ('pending', 'sending') AND EXISTS "
        "(SELECT 1 FROM broadcast WHERE broadcast.id = outbox.broadcast_id AND broadcast.message IS NOT NULL)"
    )
    # Not batch mode: on SQLite it would copy the broadcast table, which the outbox's foreign
    # key forbids; SQLite drops a plain column itself since 3.35.
    op.execute("ALTER TABLE broadcast DROP COLUMN message")

"""channel accounts: every Telegram bot, Zalo bot and Zalo OA belongs to a ward

``channel_account`` (key, kind, ward_id, created_at). An account's key is what identities,
outbox rows and handled events already store as their channel, so the data of a deployment
made before accounts existed moves onto *default accounts* without rewriting a row: one account
per channel found in ``identity``, ``outbox`` or ``handled_event`` (``telegram``, ``zalo``,
``zalo_oa``, ``console``), each of the kind of that name, serving the database's only ward
when it has exactly one (else every ward: ward_id NULL, as the single-ward settings do), and
registered at the first moment its channel was used.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_account",
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["ward_id"], ["ward.id"]),
        sa.PrimaryKeyConstraint("key"),
    )
    # The existing data's accounts, in one statement: each channel in use, the only ward if
    # there is exactly one, and (no clock in a migration) the first moment the channel was used.
    op.execute(
        "INSERT INTO channel_account (key, kind, ward_id, created_at) "
        "SELECT used.channel, used.channel, (SELECT MIN(id) FROM ward HAVING COUNT(*) = 1), MIN(used.at) "
        "FROM (SELECT channel, created_at AS at FROM identity "
        "      UNION ALL SELECT channel, created_at FROM outbox "
        "      UNION ALL SELECT source, handled_at FROM handled_event WHERE LENGTH(source) <= 16) AS used "
        "GROUP BY used.channel"
    )


def downgrade() -> None:
    op.drop_table("channel_account")

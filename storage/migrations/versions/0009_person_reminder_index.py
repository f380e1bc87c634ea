"""an index of residents by reminder hour, for the reminder planning of each tick

``ix_person_reminder`` orders people by their reminder hour, then id: a tick reads only the
people whose hour's window holds the moment (nobody, at most hours of the day), in batches by
id. Indexes only: no data changes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_person_reminder", "person", ["reminder_hour", "id"])


def downgrade() -> None:
    op.drop_index("ix_person_reminder", table_name="person")

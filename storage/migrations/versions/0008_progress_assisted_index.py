"""an index of the assisted completions, for the leaders' counts and the assisted sheet

``ix_progress_assisted`` holds only the rows a leader recorded (``assisted_by`` set: about one
in ten), by leader and moment: the report's per-leader count of assisted completions and its
list of them read these rows instead of every progress row of the database. Indexes only: no
data changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ASSISTED = sa.text("assisted_by IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_progress_assisted", "lesson_progress", ["assisted_by", "completed_at"],
                    sqlite_where=ASSISTED, postgresql_where=ASSISTED)


def downgrade() -> None:
    op.drop_index("ix_progress_assisted", table_name="lesson_progress")

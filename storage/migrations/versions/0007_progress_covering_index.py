"""a covering index on lesson_progress for the per-person counts of a ward

``ix_progress_person_cover`` holds every column the statistics read from a progress row
(``storage.stats``, ``storage.report_data.residents_progress``), in the order they are
reached: a person's rows, then the lesson, its status and moments, who assisted. With it
SQLite and PostgreSQL answer a ward of 50,000 residents from the index alone instead of
fetching ~400,000 table rows one by one. Indexes only: no data changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:00:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["person_id", "lesson_id", "status", "completed_at", "assisted_by", "started_at", "updated_at"]


def upgrade() -> None:
    op.create_index("ix_progress_person_cover", "lesson_progress", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_progress_person_cover", table_name="lesson_progress")

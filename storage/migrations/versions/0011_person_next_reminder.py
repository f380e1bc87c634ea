"""each resident's next reminder moment, indexed: a tick reads only the people whose moment has come

``person.next_reminder_at`` (UTC) is when the reminder planner looks at a person next; it is kept
by ``bot.reminders`` (on activity, on a change of the reminder settings, when a reminder is
planned or sent, on erasure). ``ix_person_next_reminder (next_reminder_at, id)`` holds only the
rows that have one, so a tick reads ``WHERE next_reminder_at <= now ORDER BY next_reminder_at, id``
and stops at the first row still to come. It replaces ``ix_person_reminder`` (0009): nothing
reads people by hour any more.

The backfill is one set-based UPDATE. A migration does not know the ward's settings (time zone,
inactive days, unanswered limit), so it does not compute the exact moment: everyone who may be
reminded (reminders on, consented, not erased, a lesson in progress) gets their last activity, a
moment already past and never later than their reminder may fall due. The first tick after the
upgrade therefore reads each of them once, in batches, checks the rules as for anyone due, and
moves them on to their next reminder hour (or NULL). Everyone else has NULL.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOT_NULL = sa.text("next_reminder_at IS NOT NULL")


def upgrade() -> None:
    op.add_column("person", sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True))
    person = sa.table("person", sa.column("id", sa.Integer), sa.column("reminders_on", sa.Boolean),
                      sa.column("deleted_at", sa.DateTime(timezone=True)),
                      sa.column("consent_at", sa.DateTime(timezone=True)),
                      sa.column("last_active_at", sa.DateTime(timezone=True)),
                      sa.column("created_at", sa.DateTime(timezone=True)),
                      sa.column("next_reminder_at", sa.DateTime(timezone=True)))
    progress = sa.table("lesson_progress", sa.column("person_id", sa.Integer), sa.column("status", sa.String))
    in_progress = sa.exists().where(progress.c.person_id == person.c.id, progress.c.status == "in_progress")
    op.execute(
        person.update()
        .where(person.c.reminders_on.is_(sa.true()), person.c.deleted_at.is_(None),
               person.c.consent_at.is_not(None), in_progress)
        .values(next_reminder_at=sa.func.coalesce(person.c.last_active_at, person.c.created_at))
    )
    op.create_index("ix_person_next_reminder", "person", ["next_reminder_at", "id"],
                    sqlite_where=_NOT_NULL, postgresql_where=_NOT_NULL)
    op.drop_index("ix_person_reminder", table_name="person")


def downgrade() -> None:
    op.create_index("ix_person_reminder", "person", ["reminder_hour", "id"])
    op.drop_index("ix_person_next_reminder", table_name="person")
    op.drop_column("person", "next_reminder_at")

"""the web dashboard's sign-in: one-time links, sessions and refused attempts

- ``web_link``: a link sent by ``/web`` (the SHA-256 of its token, the person, 10 minutes,
  used once: ``used_at`` is set by a guarded UPDATE).
- ``web_session``: a signed-in browser (the SHA-256 of its cookie, last seen: 8 idle hours).
- ``web_signin_attempt``: refused sign-ins per client address (a hash), for the rate limit.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("web_link", "web_session"):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("person_id", sa.Integer(), nullable=False),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            *([sa.Column("expires_at", UTCDateTime(), nullable=False), sa.Column("used_at", UTCDateTime(), nullable=True)]
              if table == "web_link" else [sa.Column("last_seen_at", UTCDateTime(), nullable=False)]),
            sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token_hash"),
        )
        op.create_index(f"ix_{table}_person_id", table, ["person_id"])
    op.create_table(
        "web_signin_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_signin_attempt_client", "web_signin_attempt", ["client"])
    op.create_index("ix_web_signin_attempt_at", "web_signin_attempt", ["at"])


def downgrade() -> None:
    op.drop_table("web_signin_attempt")
    op.drop_table("web_session")
    op.drop_table("web_link")

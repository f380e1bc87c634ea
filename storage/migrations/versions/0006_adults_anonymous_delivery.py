"""adults per group; delivery outcomes that outlive an erasure

- ``resident_group.adults``: the group's adult population (from the groups CSV or the admin),
  the denominator of coverage; NULL while unknown.
- ``outbox.group_id``: the recipient's group when the row was queued, so a delivery report
  counts a row by group without reaching the recipient's identity.
- ``outbox.identity_id`` becomes nullable with ON DELETE SET NULL: when a recipient erases
  their data their identity goes, and their rows stay as anonymous outcomes (sent, blocked…)
  instead of vanishing from the broadcast's delivery report.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The outbox's foreign keys were created without names: batch mode finds them by these.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
POSTGRES_FK = "outbox_identity_id_fkey"  # PostgreSQL's own name for the unnamed constraint


def upgrade() -> None:
    with op.batch_alter_table("resident_group", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adults", sa.Integer(), nullable=True))
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("outbox", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(POSTGRES_FK if dialect == "postgresql" else "fk_outbox_identity_id_identity",
                                 type_="foreignkey")
        batch_op.create_foreign_key("fk_outbox_identity_id_identity", "identity", ["identity_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_foreign_key("fk_outbox_group_id_resident_group", "resident_group", ["group_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.create_index("ix_outbox_broadcast_group", ["broadcast_id", "group_id", "status"])
    # Rows queued before this revision: the recipient's group now.
    op.execute(
        "UPDATE outbox SET group_id = (SELECT person.group_id FROM identity JOIN person "
        "ON person.id = identity.person_id WHERE identity.id = outbox.identity_id)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE identity_id IS NULL")
    with op.batch_alter_table("outbox", schema=None, naming_convention=NAMING) as batch_op:
        batch_op.drop_index("ix_outbox_broadcast_group")
        batch_op.drop_constraint("fk_outbox_group_id_resident_group", type_="foreignkey")
        batch_op.drop_constraint("fk_outbox_identity_id_identity", type_="foreignkey")
        batch_op.create_foreign_key("fk_outbox_identity_id_identity", "identity", ["identity_id"], ["id"],
                                    ondelete="CASCADE")
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("group_id")
    with op.batch_alter_table("resident_group", schema=None) as batch_op:
        batch_op.drop_column("adults")

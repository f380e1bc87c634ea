"""trust: handled events, outbox claims, link confirmation, token leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:04:08.891292
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op

import storage.types  # noqa: F401


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Columns added to existing tables carry a server default so rows already there get one.
    op.create_table('handled_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('handled_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'event_id', name='uq_handled_event')
    )
    with op.batch_alter_table('handled_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handled_event_handled_at'), ['handled_at'], unique=False)

    op.create_table('link_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['identity.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('link_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_link_attempt_identity_id'), ['identity_id'], unique=False)

    with op.batch_alter_table('channel_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refreshing_until', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('refresh_owner', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))

    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('help_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routed_to', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))

    with op.batch_alter_table('link_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('claimed_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_link_code_claimed_by_identity', 'identity', ['claimed_by'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('about_person_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_about_person_id'), ['about_person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_ref'), ['ref'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_ref'))
        batch_op.drop_index(batch_op.f('ix_outbox_about_person_id'))
        batch_op.drop_column('ref')
        batch_op.drop_column('about_person_id')
        batch_op.drop_column('claim')

    with op.batch_alter_table('link_code', schema=None) as batch_op:
        batch_op.drop_constraint('fk_link_code_claimed_by_identity', type_='foreignkey')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('failed_attempts')

    with op.batch_alter_table('help_request', schema=None) as batch_op:
        batch_op.drop_column('routed_to')

    with op.batch_alter_table('conversation_state', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('channel_token', schema=None) as batch_op:
        batch_op.drop_column('refresh_owner')
        batch_op.drop_column('refreshing_until')

    with op.batch_alter_table('link_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_link_attempt_identity_id'))

    op.drop_table('link_attempt')
    with op.batch_alter_table('handled_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handled_event_handled_at'))

    op.drop_table('handled_event')

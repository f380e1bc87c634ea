"""Helpers for the leader and admin tests: give roles the way the CLI and invitations do,
look rows up, and take a snapshot of everything a leader or admin action may change."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.app import App
from storage.audit import REFUSED
from storage.models import (
    AuditLog,
    Broadcast,
    HelpRequest,
    Identity,
    Invite,
    LessonProgress,
    Outbox,
    Person,
    ResidentGroup,
    Role,
    RoleKind,
    Ward,
)
from storage.roles import add_admin, grant
from tests.support import Chat


async def person_of(app: App, chat: Chat) -> Person:
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(
            Identity.channel == chat.channel, Identity.external_id == chat.user))).one()
        person = await session.get(Person, identity.person_id)
    assert person is not None
    return person


async def group(app: App, code: str) -> ResidentGroup:
    async with app.sessions() as session:
        return (await session.exec(select(ResidentGroup).where(ResidentGroup.code == code))).one()


async def ward(app: App, code: str = "DEMO") -> Ward:
    async with app.sessions() as session:
        return (await session.exec(select(Ward).where(Ward.code == code))).one()


async def make_admin(app: App, chat: Chat) -> None:
    """What ``hocvuso admin add <channel>:<id>`` does."""
    async with app.sessions() as session, session.begin():
        await add_admin(session, channel=chat.channel, external_id=chat.user, ward_code=None,
                        now=app.conversation.services.clock.now())


async def make_leader(app: App, chat: Chat, group_code: str) -> None:
    """A leader role as an accepted invitation leaves it (the invitation flow has its own tests)."""
    person = await person_of(app, chat)
    target = await group(app, group_code)
    async with app.sessions() as session, session.begin():
        await grant(session, person_id=person.id, kind=RoleKind.LEADER, group_id=target.id,
                    granted_by="test", now=app.conversation.services.clock.now())


async def rows(app: App, model: type, *, order: Any = None) -> list[Any]:
    async with app.sessions() as session:
        return list((await session.exec(select(model).order_by(col(order or model.id)))).all())


def _plain(row: Any, leave_out: set[str]) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in row.__table__.columns if c.name not in leave_out}


async def snapshot(app: App) -> dict[str, list[dict[str, Any]]]:
    """Every row a leader or admin action could change. Left out: what the engine stamps on
    every update (conversation state, identity.last_seen_at, person.last_active_at and the next
    reminder moment it sets) and the ``refused`` audit rows, the one trace a refusal leaves
    (tests/test_audit.py counts them)."""
    volatile = {"last_active_at", "reminders_unanswered", "next_reminder_at", "last_seen_at", "blocked_at"}
    result = {}
    for model in (Role, Invite, Outbox, Broadcast, LessonProgress, Person, AuditLog, HelpRequest, ResidentGroup,
                  Identity):
        kept = [r for r in await rows(app, model) if not (model is AuditLog and r.action == REFUSED)]
        result[model.__name__] = [_plain(r, volatile) for r in kept]
    return result

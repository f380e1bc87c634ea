"""The tables (SQLModel). Times are UTC; names follow docs/architecture.md §Data model.
Enumerations are stored as their readable values (``completed``), not as numbers.

Relationships are not declared: queries load what they need explicitly, so nothing is
ever loaded lazily under asyncio (which would raise ``MissingGreenlet``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _time(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class GroupKind(StrEnum):
    """Residential groups are self-managed community units, not administrative levels."""

    TO_DAN_PHO = "to-dan-pho"
    KHU_PHO = "khu-pho"
    THON = "thon"
    AP = "ap"


class Ward(SQLModel, table=True):
    """A xã / phường / đặc khu: the ward that runs the programme."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=120)


class ChannelAccount(SQLModel, table=True):
    """A Telegram bot, a Zalo bot or a Zalo OA, and the ward it serves (NULL: every ward — the
    single-ward settings). ``key`` is what identities, outbox rows and handled events store as
    their channel. Registered at start from the operator's declaration (``bot/accounts.py``);
    no token is ever stored here."""

    __tablename__ = "channel_account"

    key: str = Field(primary_key=True, max_length=16)
    kind: str = Field(max_length=16)
    ward_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("ward.id"), nullable=True))
    created_at: datetime | None = _time(nullable=False)


class ResidentGroup(SQLModel, table=True):
    """A tổ dân phố / khu phố / thôn / ấp. ``code`` is unique across the database because
    join links (``g_<code>``) name it alone."""

    __tablename__ = "resident_group"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    ward_id: int = Field(sa_column=Column(Integer, ForeignKey("ward.id"), nullable=False, index=True))
    name: str = Field(max_length=120)
    kind: GroupKind = Field(default=GroupKind.TO_DAN_PHO, sa_type=String(16))
    target_percent: int = Field(default=80)
    # The group's adult population (groups CSV or the admin): coverage = completed ÷ adults.
    adults: int | None = Field(default=None)


class Person(SQLModel, table=True):
    """A resident (or leader, admin). Created only once consent is given.

    After a deletion request the row stays as an anonymous tombstone (no name, no channel
    identity) so the group's anonymous completion counts stay right.
    """

    # The reminder planning reads only the people whose next reminder moment has come, in
    # that order (0011); people with nothing to be reminded of (NULL) are not in the index.
    __table_args__ = (Index("ix_person_next_reminder", "next_reminder_at", "id",
                            sqlite_where=text("next_reminder_at IS NOT NULL"),
                            postgresql_where=text("next_reminder_at IS NOT NULL")),)

    id: int | None = Field(default=None, primary_key=True)
    display_name: str | None = Field(default=None, max_length=64)
    group_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("resident_group.id"), index=True)
    )
    locale: str = Field(default="vi", max_length=8)
    consent_at: datetime | None = _time()
    consent_version: str | None = Field(default=None, max_length=16)
    reminder_hour: int = Field(default=19)
    reminders_on: bool = Field(default=True)
    reminders_unanswered: int = Field(default=0)  # reset by any message from the person
    last_reminded_at: datetime | None = _time()
    # When the reminder planner looks at this person next (bot.reminders.next_reminder_at): never
    # later than a reminder may fall due; NULL when only their own message could make one due.
    next_reminder_at: datetime | None = _time()
    created_at: datetime | None = _time(nullable=False)
    last_active_at: datetime | None = _time()
    deleted_at: datetime | None = _time()
    # Set when a leader added this resident by name (someone without a smartphone).
    added_by: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("person.id")))


class Identity(SQLModel, table=True):
    """One user of one channel account: ``(channel, external_id)``, ``channel`` being the
    account's key (``telegram``, or a ward bot's key). A person may have several."""

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("person.id", ondelete="SET NULL"), index=True)
    )
    channel: str = Field(max_length=16)  # the channel account's key
    external_id: str = Field(max_length=64)
    blocked_at: datetime | None = _time()
    created_at: datetime | None = _time(nullable=False)
    last_seen_at: datetime | None = _time()  # last update from the user (Zalo OA's 7-day window)


class ProgressStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class LessonProgress(SQLModel, table=True):
    """A person's progress on one lesson. A completion keeps the lesson version it was
    earned on, its score and the number of quiz attempts."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        UniqueConstraint("person_id", "lesson_id", name="uq_progress_person_lesson"),
        # Every column the statistics read, so a ward's counts come from the index alone (0007).
        Index("ix_progress_person_cover", "person_id", "lesson_id", "status", "completed_at", "assisted_by",
              "started_at", "updated_at"),
        # The assisted completions alone, by leader and moment (0008): the report's leader counts.
        Index("ix_progress_assisted", "assisted_by", "completed_at", sqlite_where=text("assisted_by IS NOT NULL"),
              postgresql_where=text("assisted_by IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id"), nullable=False, index=True))
    lesson_id: str = Field(max_length=32, index=True)
    lesson_version: int
    status: ProgressStatus = Field(default=ProgressStatus.IN_PROGRESS, sa_type=String(16))
    score: int | None = None
    attempts: int = Field(default=0)
    # The card she read last (0-based): "📖 Học tiếp" opens the lesson there again.
    card: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    started_at: datetime | None = _time(nullable=False)
    completed_at: datetime | None = _time(index=True)
    updated_at: datetime | None = _time(nullable=False)
    assisted_by: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("person.id")))


class QuizAnswer(SQLModel, table=True):
    """One answer to one question in one attempt; unique, so a double press counts once."""

    __tablename__ = "quiz_answer"
    __table_args__ = (
        UniqueConstraint("person_id", "lesson_id", "attempt", "question_id", name="uq_answer_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(
        sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    lesson_id: str = Field(max_length=32)
    lesson_version: int
    attempt: int
    question_id: str = Field(max_length=8)
    choice: int
    correct: bool
    at: datetime | None = _time(nullable=False)


class ConversationState(SQLModel, table=True):
    """Where one identity's conversation stands: any process can continue it."""

    __tablename__ = "conversation_state"

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("identity.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    step: str = Field(default="new", max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The options offered last (``{"options": [...], "extra": [...], "last": action}``): what
    # a typed reply may pick and which step-bound actions are honoured now.
    menu: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Bumped on every save: a writer outside the engine (the outbox sender) can tell whether
    # the resident moved on since it looked.
    version: int = Field(default=0)
    updated_at: datetime | None = _time(nullable=False)


class HandledEvent(SQLModel, table=True):
    """An update a channel delivered and the engine handled, recorded in the same transaction
    as its effects: the same event delivered again (a webhook retry, a redelivery after a
    restart) changes nothing. Pruned after a retention window."""

    __tablename__ = "handled_event"
    __table_args__ = (UniqueConstraint("source", "event_id", name="uq_handled_event"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=48)  # the channel account's key
    event_id: str = Field(max_length=128)
    handled_at: datetime | None = _time(nullable=False, index=True)


class AuditLog(SQLModel, table=True):
    """Who did what to what. ``actor`` is ``person:<id>`` or ``cli``; no personal data."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=32)
    action: str = Field(max_length=48, index=True)
    target: str = Field(default="", max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime | None = _time(nullable=False, index=True)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class Outbox(SQLModel, table=True):
    """A message the bot sends without being asked (reminder, broadcast, nudge, digest).

    One sender per channel drains it: claim with a lease, send, mark. ``dedupe_key`` makes
    every producer idempotent: planning the same message twice inserts it once.
    """

    __table_args__ = (
        Index("ix_outbox_claim", "channel", "status", "due_at"),
        Index("ix_outbox_broadcast_group", "broadcast_id", "group_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    # The recipient; NULL once they erased their data (the row stays as an anonymous outcome).
    identity_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("identity.id", ondelete="SET NULL", name="fk_outbox_identity_id_identity"),
                         nullable=True, index=True),
    )
    channel: str = Field(max_length=16)  # the channel account whose sender sends it
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    due_at: datetime | None = _time(nullable=False)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(16))
    attempts: int = Field(default=0)
    # Incremented by every claim: the fencing token. Only the sender holding the latest claim
    # may finish the row, so a sender whose lease ran out cannot overwrite another's outcome.
    claim: int = Field(default=0)
    lease_until: datetime | None = _time()
    last_error: str | None = Field(default=None, max_length=300)
    sent_at: datetime | None = _time()
    dedupe_key: str = Field(max_length=96, unique=True)
    broadcast_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("broadcast.id"), index=True)
    )
    # The recipient's group when the row was queued: delivery reports count by it.
    group_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("resident_group.id", ondelete="SET NULL",
                                             name="fk_outbox_group_id_resident_group")),
    )
    # The person whose name or words the message carries, when that is not the recipient (a
    # resident's question sent to a leader, a leader's nudge): erased with that person.
    about_person_id: int | None = Field(default=None, sa_column=Column(Integer, index=True))
    # What the message is about, re-checked when it is sent (``help_request:<id>``).
    ref: str | None = Field(default=None, max_length=48, index=True)
    created_at: datetime | None = _time(nullable=False)


class BroadcastStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    CANCELLED = "cancelled"


class Broadcast(SQLModel, table=True):
    """Campaign news for an audience, sent now or at a scheduled time (via the outbox).

    ``message`` is what every recipient reads (``OutboundMessage.to_payload()``: the sender's
    line, the text, the button, the photo), made once when the broadcast is queued; its outbox
    rows carry an empty payload and the broadcast's id, and the sender reads the message here
    (0012). Rows queued before that carry the message themselves and are sent as they are."""

    id: int | None = Field(default=None, primary_key=True)
    author: str = Field(max_length=32)
    text: str = Field(max_length=4000)
    image: str | None = Field(default=None, max_length=300)
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    scheduled_at: datetime | None = _time(nullable=False)
    status: BroadcastStatus = Field(default=BroadcastStatus.SCHEDULED, sa_type=String(16))
    recipients: int | None = None
    created_at: datetime | None = _time(nullable=False)
    queued_at: datetime | None = _time()
    message: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))


class BroadcastOutcome(SQLModel, table=True):
    """What the retention kept of a broadcast's outbox rows it deleted: how many rows of a
    group ended in a status, and when the first and last of them was sent. The delivery
    reports add these to the rows still in the outbox (``storage.outbox.outcome_counts``), so
    deleting a row never changes a report (0012).

    ``group_id`` is the group the rows were queued for (``outbox.group_id``), 0 for rows of
    no group: part of the key, so it cannot be NULL; no foreign key (groups are never
    deleted, and a count must outlive whatever happens to one)."""

    __tablename__ = "broadcast_outcome"

    broadcast_id: int = Field(
        sa_column=Column(Integer, ForeignKey("broadcast.id"), primary_key=True, autoincrement=False))
    group_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    status: str = Field(sa_column=Column(String(16), primary_key=True))
    rows: int = Field(default=0)
    first_sent_at: datetime | None = _time()
    last_sent_at: datetime | None = _time()


class LinkCode(SQLModel, table=True):
    """A short-lived code (``/lienket``) that joins a second channel identity to a person."""

    __tablename__ = "link_code"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    person_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False))
    created_at: datetime | None = _time(nullable=False)
    expires_at: datetime | None = _time(nullable=False)
    used_at: datetime | None = _time()
    failed_attempts: int = Field(default=0)  # wrong guesses near this code; too many kill it
    # The identity that entered the code, waiting for the owner to confirm on their own channel.
    claimed_by: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("identity.id", ondelete="SET NULL"))
    )
    claimed_at: datetime | None = _time()


class LinkAttempt(SQLModel, table=True):
    """A code typed by an identity (right or wrong): attempts are limited per identity."""

    __tablename__ = "link_attempt"

    id: int | None = Field(default=None, primary_key=True)
    identity_id: int = Field(
        sa_column=Column(Integer, ForeignKey("identity.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    at: datetime | None = _time(nullable=False)
    ok: bool = Field(default=False)


class ChannelToken(SQLModel, table=True):
    """Rotating credentials of a channel (the Zalo OA access and refresh tokens), kept in the
    database so every process and every restart uses the newest pair."""

    __tablename__ = "channel_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32, unique=True)  # e.g. "zalo_oa:<oa id>"
    access_token: str | None = Field(default=None, max_length=1024)
    refresh_token: str | None = Field(default=None, max_length=1024)
    expires_at: datetime | None = _time()
    # A refresh in progress (its owner exchanges the single-use refresh token outside any
    # transaction); others wait for it to end or expire instead of refreshing too.
    refreshing_until: datetime | None = _time()
    refresh_owner: str | None = Field(default=None, max_length=32)
    updated_at: datetime | None = _time(nullable=False)


class RoleKind(StrEnum):
    LEADER = "leader"  # of one residential group (a person may lead several)
    ADMIN = "admin"  # of a ward (Phòng Văn hóa – Xã hội)


class Role(SQLModel, table=True):
    """A leader of a group or an admin of a ward. Checked from the database whenever a
    leader or admin action runs."""

    __table_args__ = (UniqueConstraint("person_id", "kind", "group_id", "ward_id", name="uq_role"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True))
    kind: RoleKind = Field(sa_type=String(16))
    group_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("resident_group.id")))
    ward_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("ward.id")))
    granted_by: str = Field(max_length=32)
    granted_at: datetime | None = _time(nullable=False)


class Invite(SQLModel, table=True):
    """A single-use, expiring invitation (deep link ``ld_<code>``) to lead a group."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=24, unique=True)
    kind: RoleKind = Field(default=RoleKind.LEADER, sa_type=String(16))
    group_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("resident_group.id")))
    ward_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("ward.id")))
    created_by: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("person.id")))
    created_at: datetime | None = _time(nullable=False)
    expires_at: datetime | None = _time(nullable=False)
    used_by: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("person.id")))
    used_at: datetime | None = _time()


class HelpRequest(SQLModel, table=True):
    """A resident's "ask for help" message, forwarded to their group's leaders."""

    __tablename__ = "help_request"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True))
    group_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("resident_group.id")))
    text: str = Field(max_length=1000)
    created_at: datetime | None = _time(nullable=False)
    # Who it was addressed to when asked: "leaders", "admins" or "nobody" (kept for a leader
    # appointed later); re-checked whenever a message about it is sent.
    routed_to: str | None = Field(default=None, max_length=16)
    answered_by: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("person.id")))
    answered_at: datetime | None = _time()


class WebLink(SQLModel, table=True):
    """A one-time sign-in link to the web dashboard (``/web`` in the chat): only the SHA-256
    of its token is kept, so the table cannot be used to sign in."""

    __tablename__ = "web_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    person_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime | None = _time(nullable=False)
    expires_at: datetime | None = _time(nullable=False)
    used_at: datetime | None = _time()


class WebSession(SQLModel, table=True):
    """A signed-in browser: the SHA-256 of its cookie's random id and when it was last seen
    (idle sessions expire). Roles are not kept here: they are read again on every request."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    person_id: int = Field(sa_column=Column(Integer, ForeignKey("person.id", ondelete="CASCADE"), nullable=False, index=True))
    created_at: datetime | None = _time(nullable=False)
    last_seen_at: datetime | None = _time(nullable=False)


class WebSignInAttempt(SQLModel, table=True):
    """A refused sign-in (unknown, used or expired link) from a client address, kept as an HMAC
    keyed by a server secret for 15 minutes: attempts are limited per address in the database, so
    every web replica agrees."""

    __tablename__ = "web_signin_attempt"

    id: int | None = Field(default=None, primary_key=True)
    client: str = Field(max_length=64, index=True)
    at: datetime | None = _time(nullable=False, index=True)

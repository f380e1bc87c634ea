"""One person, several channels: link codes, and merging two people into one.

A consented person asks for a short code on one channel; the same human types it on
another channel (the code is *claimed* by that identity), and the code's owner confirms on
their own channel; only then does the claiming identity join the owner's person. If it had
a person of its own, the two are merged so that no completion is lost.

Threat model (an account takeover: someone joins a resident's — or a leader's — person and
sees their name and progress, or inherits their roles):

- guessing: a code is 6 characters of a 26-letter alphabet (≈ 3.1 × 10⁸ codes) alive for
  10 minutes; every identity may type at most ``MAX_FAILURES`` wrong codes per
  ``ATTEMPT_WINDOW`` (table ``link_attempt``), then it is told to try again later, whatever
  it types. Even with 10,000 live codes and 1,000 throw-away accounts, a guess succeeds
  about once in 6 hours…
- …and a guessed (or overheard) code gives nothing by itself: it only *claims* the code.
  The owner is asked on their own channel ("Có người muốn liên kết… Đó có phải bạn
  không?") and nothing is merged until they say yes. The claimer is never shown the
  owner's name.
- a code known to two identities is compromised: a second identity claiming it kills it
  (``link_code.failed_attempts`` counts such claims and the owner's refusals), as does the
  owner's "❌ Không phải tôi".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ChannelAccount,
    ConversationState,
    HelpRequest,
    Identity,
    LessonProgress,
    LinkAttempt,
    LinkCode,
    Outbox,
    Person,
    ProgressStatus,
    QuizAnswer,
    ResidentGroup,
    Role,
)

# No 0/O, 1/I/L, 5/S or 8/B: a code read aloud or copied by hand from one phone to the other.
ALPHABET = "ACDEFGHJKMNPQRTUVWXY234679"
CODE_LENGTH = 6  # 26**6 ≈ 309 million codes, each alive for 10 minutes
CODE_TTL = timedelta(minutes=10)
MAX_FAILURES = 5  # wrong codes an identity may type…
ATTEMPT_WINDOW = timedelta(hours=1)  # …in this time


class Claim(StrEnum):
    """What typing a valid code did."""

    CLAIMED = "claimed"  # this identity now waits for the owner's confirmation
    AGAIN = "again"  # this identity had claimed it already (typed twice): nothing new
    KILLED = "killed"  # another identity had claimed it: the code is dead


def normalise_code(typed: str) -> str:
    """What a resident typed ("abc 123", "ABC-123") as a stored code."""
    return "".join(c for c in typed.upper() if c.isalnum())


async def create_code(session: AsyncSession, *, person_id: int, now: datetime) -> LinkCode:
    """A new single-use code for ``person_id``; the person's older unused codes and every
    expired code are deleted (only the newest code a person was shown works)."""
    await session.exec(delete(LinkCode).where(LinkCode.expires_at < now))
    await session.exec(delete(LinkCode).where(LinkCode.person_id == person_id, LinkCode.used_at.is_(None)))
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        row = LinkCode(code=code, person_id=person_id, created_at=now, expires_at=now + CODE_TTL)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # that code is taken (used, or someone else's): draw again
        return row


def looks_like_code(typed: str) -> bool:
    """Typed text shaped like a code (counts as an attempt); anything else is just text."""
    return len(typed) <= 3 * CODE_LENGTH and len(normalise_code(typed)) == CODE_LENGTH


async def recent_failures(session: AsyncSession, *, identity_id: int, now: datetime) -> int:
    """Wrong codes typed by this identity within ``ATTEMPT_WINDOW``."""
    query = select(func.count()).select_from(LinkAttempt).where(
        LinkAttempt.identity_id == identity_id, col(LinkAttempt.ok).is_(False),
        col(LinkAttempt.at) > now - ATTEMPT_WINDOW,
    )
    return (await session.exec(query)).one()


async def record_attempt(session: AsyncSession, *, identity_id: int, ok: bool, now: datetime) -> None:
    """Note a typed code; attempts older than the window are forgotten (everyone's)."""
    stale = delete(LinkAttempt).where(col(LinkAttempt.at) <= now - ATTEMPT_WINDOW)
    await session.exec(stale)
    session.add(LinkAttempt(identity_id=identity_id, ok=ok, at=now))


async def usable_code(session: AsyncSession, *, code: str, now: datetime) -> LinkCode | None:
    """The unused, unexpired code of a person who still exists, locked for this transaction
    (two identities sending the same code at once are serialised)."""
    query = (
        select(LinkCode)
        .where(LinkCode.code == normalise_code(code), col(LinkCode.used_at).is_(None), LinkCode.expires_at > now)
        .with_for_update()
    )
    row = (await session.exec(query)).first()
    return row if row is not None and await _owner_alive(session, row) else None


async def _owner_alive(session: AsyncSession, code: LinkCode) -> bool:
    person = await session.get(Person, code.person_id)
    return person is not None and person.deleted_at is None


def kill(code: LinkCode, *, now: datetime) -> None:
    """The code can never be used again (claimed by a second identity, or refused)."""
    code.failed_attempts += 1
    code.expires_at = now
    code.claimed_by = None


async def claim_code(session: AsyncSession, *, code: LinkCode, identity_id: int, now: datetime) -> Claim:
    """``identity_id`` typed ``code`` (usable): claim it for the owner to confirm."""
    if code.claimed_by == identity_id:
        return Claim.AGAIN
    if code.claimed_by is not None:
        kill(code, now=now)
        session.add(code)
        return Claim.KILLED
    code.claimed_by, code.claimed_at = identity_id, now
    session.add(code)
    await session.flush()
    return Claim.CLAIMED


async def pending_claim(session: AsyncSession, *, person_id: int, now: datetime) -> LinkCode | None:
    """The person's code that another identity claimed and that waits for their answer."""
    query = select(LinkCode).where(
        LinkCode.person_id == person_id, col(LinkCode.claimed_by).is_not(None), col(LinkCode.used_at).is_(None),
        LinkCode.expires_at > now,
    ).order_by(col(LinkCode.id).desc())
    return (await session.exec(query)).first()


async def claimed_code(session: AsyncSession, *, code_id: int, person_id: int, now: datetime) -> LinkCode | None:
    """The code ``code_id`` if ``person_id`` owns it and it is claimed, unused and unexpired,
    locked for this transaction: what "✅ Đúng, liên kết" / "❌ Không phải tôi" may answer."""
    query = select(LinkCode).where(
        LinkCode.id == code_id, LinkCode.person_id == person_id, col(LinkCode.claimed_by).is_not(None),
        col(LinkCode.used_at).is_(None), LinkCode.expires_at > now,
    ).with_for_update()
    row = (await session.exec(query)).first()
    return row if row is not None and await _owner_alive(session, row) else None


@dataclass(frozen=True)
class MergeSummary:
    moved_lessons: int
    combined_lessons: int
    moved_identities: int
    moved_roles: int = 0
    moved_requests: int = 0


def _combine(keep: LessonProgress, other: LessonProgress) -> None:
    """Fold ``other`` into ``keep`` (same lesson): a completion is never lost; of two
    completions the better score and the earlier completion time are kept."""
    keep_done = keep.status == ProgressStatus.COMPLETED
    other_done = other.status == ProgressStatus.COMPLETED
    if other_done and not keep_done:
        keep.status, keep.score, keep.completed_at = other.status, other.score, other.completed_at
        keep.lesson_version, keep.assisted_by = other.lesson_version, other.assisted_by
    elif other_done and keep_done:
        keep.score = max(keep.score or 0, other.score or 0)
        keep.completed_at = min(t for t in (keep.completed_at, other.completed_at) if t is not None)
        keep.lesson_version = max(keep.lesson_version, other.lesson_version)
    elif not keep_done:
        scores = [s for s in (keep.score, other.score) if s is not None]
        keep.score = max(scores) if scores else None
    keep.attempts = max(keep.attempts, other.attempts)
    keep.started_at = min(t for t in (keep.started_at, other.started_at) if t is not None)
    keep.updated_at = max(t for t in (keep.updated_at, other.updated_at) if t is not None)


async def merge_people(session: AsyncSession, *, keep_id: int, other_id: int, now: datetime) -> MergeSummary:
    """Move everything of person ``other_id`` to ``keep_id``; ``other_id`` becomes an
    anonymous tombstone (as after an erasure, but its data lives on in ``keep_id``).

    Per lesson: a row only the other has moves over; two rows are combined (see
    :func:`_combine`; attempts = the larger count). Quiz answers move too, except an
    answer whose (lesson, attempt, question) the kept person already has — the unique key
    allows one. Every answer's attempt stays ≤ the merged count, so the next attempt
    (count + 1) collides with nothing; an attempt in progress must be abandoned
    (:func:`leave_step`). Roles move (one of each: a role both hold is kept once), and so do
    help requests (asked and answered), outbox rows about the other (erased with the kept
    person from now on) and the people the other added by name.
    """
    keep = await session.get(Person, keep_id)
    other = await session.get(Person, other_id)
    assert keep is not None and other is not None and keep_id != other_id
    ours = {p.lesson_id: p for p in (await session.exec(
        select(LessonProgress).where(LessonProgress.person_id == keep_id))).all()}
    theirs = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == other_id))).all()
    moved = combined = 0
    for row in theirs:
        mine = ours.get(row.lesson_id)
        if mine is None:
            row.person_id = keep_id
            session.add(row)
            moved += 1
        else:
            _combine(mine, row)
            session.add(mine)
            await session.delete(row)
            combined += 1
    await session.flush()

    taken = set((await session.exec(
        select(QuizAnswer.lesson_id, QuizAnswer.attempt, QuizAnswer.question_id).where(QuizAnswer.person_id == keep_id)
    )).all())
    for answer in (await session.exec(select(QuizAnswer).where(QuizAnswer.person_id == other_id))).all():
        if (answer.lesson_id, answer.attempt, answer.question_id) in taken:
            await session.delete(answer)
        else:
            answer.person_id = keep_id
            session.add(answer)
    await session.exec(update(LessonProgress).where(LessonProgress.assisted_by == other_id).values(assisted_by=keep_id))
    identities = await session.exec(update(Identity).where(Identity.person_id == other_id).values(person_id=keep_id))
    await session.exec(delete(LinkCode).where(LinkCode.person_id == other_id))
    roles = await _move_roles(session, keep_id=keep_id, other_id=other_id)
    requests = await session.exec(
        update(HelpRequest).where(HelpRequest.person_id == other_id).values(person_id=keep_id))
    await session.exec(update(HelpRequest).where(HelpRequest.answered_by == other_id).values(answered_by=keep_id))
    await session.exec(update(Outbox).where(Outbox.about_person_id == other_id).values(about_person_id=keep_id))
    await session.exec(update(Person).where(Person.added_by == other_id).values(added_by=keep_id))

    # What the kept person lacks, the other may have: a name, a group.
    keep.display_name = keep.display_name or other.display_name
    keep.group_id = keep.group_id if keep.group_id is not None else other.group_id
    session.add(keep)
    # The tombstone keeps no group: its completions now count for the kept person.
    other.display_name, other.group_id = None, None
    other.consent_at, other.consent_version = None, None
    other.reminders_on, other.last_active_at, other.deleted_at = False, None, now
    other.next_reminder_at = None
    session.add(other)
    await session.flush()
    return MergeSummary(moved_lessons=moved, combined_lessons=combined, moved_identities=identities.rowcount or 0,
                        moved_roles=roles, moved_requests=requests.rowcount or 0)


async def _move_roles(session: AsyncSession, *, keep_id: int, other_id: int) -> int:
    """The other's roles become the kept person's; one the kept person already holds is
    dropped (``uq_role`` cannot see duplicates through NULL columns, so compare here)."""
    held = {(r.kind, r.group_id, r.ward_id) for r in (await session.exec(
        select(Role).where(Role.person_id == keep_id))).all()}
    moved = 0
    for role in (await session.exec(select(Role).where(Role.person_id == other_id))).all():
        if (role.kind, role.group_id, role.ward_id) in held:
            await session.delete(role)
        else:
            role.person_id = keep_id
            session.add(role)
            moved += 1
    await session.flush()
    return moved


async def link_identity(session: AsyncSession, *, identity: Identity, code: LinkCode, now: datetime) -> MergeSummary | None:
    """Attach ``identity`` to the code's person, merging its own person if it had one;
    the code is used up. Only once the owner confirmed (see :func:`claimed_code`). Returns
    the merge summary, or None if nothing had to be merged."""
    code.used_at = now
    session.add(code)
    target = code.person_id
    previous = identity.person_id
    summary = None
    if previous is not None and previous != target:
        person = await session.get(Person, previous)
        if person is not None and person.deleted_at is None:
            summary = await merge_people(session, keep_id=target, other_id=previous, now=now)
    identity.person_id = target
    session.add(identity)
    await session.flush()
    return summary


async def leave_step(session: AsyncSession, *, person_id: int, step: str, to: str) -> None:
    """Move every conversation of the person that stands at ``step`` to ``to`` (its step
    data and pending menu dropped). After a merge an unfinished quiz attempt is abandoned:
    its buttons turn stale instead of mixing answers of two attempts with one number."""
    ids = select(Identity.id).where(Identity.person_id == person_id)
    await session.exec(
        update(ConversationState)
        .where(col(ConversationState.identity_id).in_(ids), ConversationState.step == step)
        .values(step=to, data={}, menu=None, version=ConversationState.version + 1)
    )


async def wards_of(session: AsyncSession, *, person_id: int) -> set[int]:
    """The wards a person belongs to: their group's, and that of every ward's own account
    (bot, OA) they talk to. Empty: only accounts serving every ward, and no group yet."""
    group_ward = select(ResidentGroup.ward_id).join(Person, col(Person.group_id) == ResidentGroup.id).where(
        Person.id == person_id)
    account_wards = select(ChannelAccount.ward_id).join(Identity, col(Identity.channel) == ChannelAccount.key).where(
        Identity.person_id == person_id, col(ChannelAccount.ward_id).is_not(None))
    found = set((await session.exec(group_ward)).all()) | set((await session.exec(account_wards)).all())
    return {ward for ward in found if ward is not None}

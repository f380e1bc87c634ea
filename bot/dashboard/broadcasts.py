"""The broadcasts' pages (issue 13, page 3): a ward admin composes, previews, schedules and
cancels broadcasts, and reads how each was delivered. Admins only: a leader gets 403.

- ``GET /web/thong-bao``: the ward's broadcasts (an admin of several wards chooses one).
- ``GET /web/phuong/<ward>/thong-bao``: the list — status, recipients, delivery per group —
  from the functions the chat's list and report use (``storage.broadcasts.ward_broadcasts``,
  ``bot.broadcasting.views`` / ``status_text``, ``storage.outbox.delivery_reports``).
- ``GET|POST /web/phuong/<ward>/thong-bao/soan``: the composer (text, a photo, whether it
  invites to learn, the audience — the chat composer's four —, now or a time in the ward's
  zone); its POST shows the **preview** as each channel renders it — Telegram through the
  chat's ``bot.broadcasting.message_replies``, Zalo through ``bot.channels.zalo.render.plan``
  (numbered lines; the words to type when the resident is busy), and where the ward has a Zalo
  Official Account through ``bot.channels.zalo.oa.oa_messages`` (numbered lines and buttons) —,
  the recipients per channel
  (``recipients_by_channel``) and when sending ends (``estimate`` / ``estimate_lines``).
- ``POST /web/phuong/<ward>/thong-bao/gui``: the previewed draft (hidden fields: what is sent
  is what was previewed) goes to ``bot.broadcasting.schedule``, the chat's and the CLI's
  service (it audits, and queues at once when due now; later, the scheduler's tick queues it).
  The preview's one-time form token is recorded with the broadcast in one transaction
  (``storage.events.record_event``): a double submit creates one broadcast. The token is
  signed with the session's cookie and its time (:func:`form_token`) and refused after
  ``FORM_TTL``, well before its record is pruned.
- ``POST /web/thong-bao/<id>/huy``: ``storage.broadcasts.cancel_broadcast``, audited as in the
  chat (``broadcast.cancel``), idempotent.
- ``GET /web/thong-bao/anh/<name>``: a photo uploaded here, for the preview (admins of the ward
  it was uploaded for only).

A photo is read whole (at most ``IMAGE_MAX_BYTES``) before anything is stored, checked by its
first bytes (JPEG or PNG), and written in the ward's own folder beside the photos the chat's
composer receives (``files_dir/in/web/<ward id>``) in a worker thread, never inside a transaction.
A photo no broadcast carries is deleted a day after its draft last used it
(``bot.media.prune_draft_photos``, the scheduler's hourly retention job).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web
from multidict import MultiDict
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.broadcasting import (
    IMAGE_MAX_BYTES, LATEST_MAX, TEXT_MAX, BroadcastError, describe_audience, estimate, estimate_lines,
    message_replies, resident_message, schedule, status_text, views,
)
from bot.channels.telegram.adapter import CAPABILITIES as TELEGRAM  # what the preview's Telegram column renders with
from bot.accounts import AccountKind
from bot.channels.zalo.oa import oa_messages
from bot.channels.zalo.render import plan as zalo_plan
from bot.core.messages import Image, Menu, Reply
from bot.dashboard import number
from bot.dashboard.access import SESSION_COOKIE, Viewer, csrf_for, csrf_ok
from bot.delivery.transport import OutboundMessage
from bot.media import DRAFT_PHOTO, draft_photos, keep_draft_photo
from storage import audit
from storage.accounts import list_accounts
from storage.broadcasts import cancel_broadcast, group_names, parse_audience, recipients_by_channel, ward_broadcasts
from storage.events import record_event
from storage.groups import list_groups
from storage.models import Broadcast, BroadcastStatus, Person, Ward
from storage.outbox import delivery_reports
from storage.roles import administers

if TYPE_CHECKING:  # pages.py imports this module
    from bot.dashboard.pages import Pages

LISTED = 20  # the latest broadcasts a ward's list shows
FORM_EVENTS = "web.broadcast"  # handled_event's source for the composer's one-time form tokens
# A preview's form token is refused after a day: its handled_event row is kept a week
# (``bot.scheduling.HANDLED_EVENTS_KEPT``), so a token that is still accepted is always found there.
FORM_TTL = timedelta(days=1)
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA"}
PHOTO_TYPES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}
FIELD_MAX = 64 * 1024  # bytes of one text field read (the text itself is at most TEXT_MAX characters)
FIELDS_MAX = 200
BODY_MAX = IMAGE_MAX_BYTES + 1024 * 1024  # a form read no further (a photo a little too big is still said kindly)


class FormError(ValueError):
    """What is wrong with the draft, in Vietnamese (shown above the composer)."""


@dataclass
class Draft:
    """The composer's fields, as typed (re-validated on every POST)."""

    text: str = ""
    image: str | None = None  # the name of a photo uploaded here (``DRAFT_PHOTO``)
    learn: bool = False
    audience: str = "all"
    groups: list[int] = field(default_factory=list)
    lesson: str = ""
    when: str = "now"  # or "later"
    at: str = ""  # "2026-11-25T08:00", the ward's local time (``<input type=datetime-local>``)

    @classmethod
    def from_form(cls, form: MultiDict[str]) -> Draft:
        groups = [n for n in map(number, form.getall("to", [])) if n is not None]
        image = form.get("anh_da_tai", "")
        return cls(text=form.get("noi_dung", "").replace("\r\n", "\n").strip(),
                   image=image if DRAFT_PHOTO.fullmatch(image) and not form.get("bo_anh") else None,
                   learn=form.get("hoc_tiep") == "1", audience=form.get("doi_tuong", "all"), groups=groups,
                   lesson=form.get("bai", ""), when="later" if form.get("khi") == "later" else "now",
                   at=form.get("luc", "")[:16])


@dataclass(frozen=True)
class Upload:
    data: bytes
    too_big: bool


@dataclass(frozen=True)
class Bubble:
    """One message as a channel shows it: a photo (with its caption as ``text``) or a text,
    and Telegram's buttons under it."""

    text: str
    photo: bool = False
    buttons: tuple[str, ...] = ()


def form_token(secret: str, now: datetime) -> str:
    """A preview's one-time form token: when it was issued, a nonce, and an HMAC of both keyed
    by the session's secret cookie (as its CSRF token): good for this session, for ``FORM_TTL``."""
    issued, nonce = str(int(now.timestamp())), secrets.token_urlsafe(12)
    return f"{issued}.{nonce}.{csrf_for(secret, f'mau:{issued}:{nonce}')[:32]}"


def form_token_ok(secret: str | None, token: str, now: datetime) -> bool:
    """The token was issued to this session (constant-time compare) less than ``FORM_TTL`` ago."""
    if len(token) > 100:  # handled_event.event_id holds 128
        return False
    issued, _, rest = token.partition(".")
    nonce, _, mac = rest.partition(".")
    if not secret or not (issued.isascii() and issued.isdigit() and len(issued) <= 12) or not nonce:
        return False
    expected = csrf_for(secret, f"mau:{issued}:{nonce}")[:32]
    if not hmac.compare_digest(expected.encode("ascii"), mac.encode("utf-8", "replace")):
        return False
    return now - FORM_TTL <= datetime.fromtimestamp(int(issued), UTC) <= now + timedelta(minutes=1)


def _photo_type(data: bytes) -> str | None:
    return next((suffix for magic, suffix in PHOTO_TYPES.items() if data.startswith(magic)), None)


async def read_form(request: web.Request) -> tuple[MultiDict[str], Upload | None]:
    """The fields of a urlencoded or multipart form, and the photo (``anh``) if one was chosen:
    read in chunks, at most ``IMAGE_MAX_BYTES`` kept (more only marks it too big)."""
    if not request.content_type.startswith("multipart/"):
        posted = await request.post()
        return MultiDict((k, v) for k, v in posted.items() if isinstance(v, str)), None
    fields: MultiDict[str] = MultiDict()
    upload = None
    total = 0
    reader = await request.multipart()
    for _ in range(FIELDS_MAX):
        part = await reader.next()
        if part is None:
            break
        if isinstance(part, BodyPartReader):
            data, too_big = bytearray(), False
            limit = IMAGE_MAX_BYTES if part.filename is not None else FIELD_MAX
            while chunk := await part.read_chunk(64 * 1024):
                total += len(chunk)
                if total > BODY_MAX:  # not a photo a little too big: something else
                    raise web.HTTPRequestEntityTooLarge(max_size=BODY_MAX, actual_size=total)
                if len(data) + len(chunk) > limit:
                    too_big = True
                    continue  # read on to the next field, keep nothing more
                data += chunk
            if part.filename is not None:
                if part.name == "anh" and (data or too_big):
                    upload = Upload(bytes(data), too_big)
            elif part.name and not too_big:
                fields.add(part.name, data.decode("utf-8", "replace"))
    return fields, upload


class BroadcastPages:
    def __init__(self, pages: Pages) -> None:
        self.p = pages
        self.d = pages.d
        self.t = pages.t

    def routes(self) -> list[web.RouteDef]:
        page = self.p.page
        ward = "/web/phuong/{ward_id:[0-9]{1,9}}/thong-bao"
        return [
            web.get("/web/thong-bao", page(self.home)),
            web.get(ward, page(self.list)),
            web.get(ward + "/soan", page(self.compose)),
            web.post(ward + "/soan", page(self.preview)),
            web.post(ward + "/gui", page(self.send)),
            web.post("/web/thong-bao/{broadcast_id:[0-9]{1,9}}/huy", page(self.cancel)),
            web.get("/web/thong-bao/anh/{name}", page(self.photo)),
        ]

    # -- who may ----------------------------------------------------------------------------

    def _ward_of(self, request: web.Request, who: Viewer) -> Ward | None:
        """The ward of the address, if this person administers it (roles read for this request)."""
        ward_id = int(request.match_info["ward_id"])
        return next((w for w in who.wards if w.id == ward_id), None)

    async def _admin_now(self, session: AsyncSession, who: Viewer, ward: Ward) -> bool:
        """This person administers the ward now, asked inside the transaction that acts (the
        roles of ``who`` were read before it began)."""
        person = await session.get(Person, who.person.id)
        if person is None or person.id is None or person.deleted_at is not None or ward.id is None:
            return False
        return await administers(session, person_id=person.id, ward_id=ward.id)

    async def _forbidden(self, request: web.Request, who: Viewer, *,
                         session: AsyncSession | None = None) -> web.Response:
        return await self.p.refused(request, who, session=session)

    def _csrf(self, request: web.Request, form: MultiDict[str]) -> bool:
        return csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf"))

    # -- the list ---------------------------------------------------------------------------

    async def home(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        if not who.wards:
            return await self._forbidden(request, who)
        if len(who.wards) == 1:
            raise web.HTTPFound(f"/web/phuong/{who.wards[0].id}/thong-bao")
        return self.p.choose_ward(who, title=self.t("web.broadcasts.title_wards"), section="/thong-bao")

    async def list(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        ward = self._ward_of(request, who)
        if ward is None:
            return await self._forbidden(request, who)
        now = self.d.clock.now()
        async with self.d.reads() as session:
            mine = await ward_broadcasts(session, ward_code=ward.code, limit=LISTED)
            shown = await views(session, mine, t=self.t, lessons=self.d.lessons, quiet=self.d.quiet, now=now)
            reports = await delivery_reports(session, broadcast_ids=[b.id for b in mine if b.id is not None])
        rows = []
        for view in shown:
            b = view.broadcast
            report = reports.get(b.id or 0)
            pending = bool(report and report.totals.get("pending"))
            rows.append({
                "view": view, "status": status_text(self.t, view, zone=self.d.zone), "report": report,
                "created": b.created_at.astimezone(self.d.zone).strftime("%H:%M %d/%m/%Y") if b.created_at else "",
                # As the chat offers it: while scheduled, or while rows still wait.
                "cancellable": b.status != BroadcastStatus.CANCELLED and (
                    b.status == BroadcastStatus.SCHEDULED or pending),
            })
        created = request.query.get("moi", "")
        return self.p.render("broadcast_list.html", viewer=who, ward=ward, rows=rows,
                             created=number(created),
                             title=self.t("web.broadcasts.title_list", ward=ward.name))

    # -- the composer -----------------------------------------------------------------------

    async def compose(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        ward = self._ward_of(request, who)
        if ward is None:
            return await self._forbidden(request, who)
        return await self._composer(who, ward, Draft())

    async def _composer(self, who: Viewer, ward: Ward, draft: Draft, *, error: str | None = None,
                        preview: dict[str, Any] | None = None, status: int = 200) -> web.Response:
        async with self.d.reads() as session:
            groups = await list_groups(session, ward_id=ward.id)
        local = self.d.clock.now().astimezone(self.d.zone)
        return self.p.render(
            "broadcast_compose.html", status=status, viewer=who, ward=ward, draft=draft, groups=groups,
            lessons=list(self.d.lessons), error=error, preview=preview, text_max=TEXT_MAX,
            image_mb=IMAGE_MAX_BYTES // (1024 * 1024), min_at=local.strftime("%Y-%m-%dT%H:%M"),
            max_at=(local + LATEST_MAX).strftime("%Y-%m-%dT%H:%M"),
            title=self.t("web.broadcasts.title_compose", ward=ward.name))

    async def preview(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        """The draft as each channel will show it, how many get it, when it is done."""
        form, upload = await read_form(request)
        if not self._csrf(request, form):
            return await self.p.refused(request, who, "form_expired")
        ward = self._ward_of(request, who)
        if ward is None:
            return await self._forbidden(request, who)
        draft = Draft.from_form(form)
        try:
            if upload is not None:
                draft.image = await self._store_photo(ward, upload)
            audience_text, at = await self._checked(ward, draft)
        except FormError as exc:
            return await self._composer(who, ward, draft, error=str(exc), status=400)
        stored = parse_audience(audience_text, lesson_ids={lesson.id for lesson in self.d.lessons})
        stored["ward"] = ward.code
        async with self.d.reads() as session:
            by_channel = await recipients_by_channel(session, audience=stored)  # the query the send will use
            names = await group_names(session, codes=stored.get("codes", []))
            accounts = await list_accounts(session)
        # The ward has a Zalo Official Account: one of its own, or one serving every ward.
        zalo_oa = any(a.kind == AccountKind.ZALO_OA and a.ward_code in (None, ward.code) for a in accounts)
        message = self._message(ward, draft)
        now = self.d.clock.now()
        start = at or now
        found = estimate(message, recipients=by_channel, rates=self.d.send_rates, start=start, quiet=self.d.quiet)
        lead = self.t("composer.if_now") if at is None else self.t("broadcast.expected")
        lines = (estimate_lines(self.t, found, lead=lead, quiet=self.d.quiet, now=now, start=start)
                 if found is not None and found.recipients else [])
        preview = {
            "telegram": self._telegram(message), "zalo": await self._zalo(message, numbered=True),
            "zalo_words": await self._zalo(message, numbered=False),
            "zalo_oa": await self._zalo_oa(message) if zalo_oa else None,
            "channels": [(CHANNEL_NAMES.get(c, c), n) for c, n in sorted(by_channel.items())],
            "total": sum(by_channel.values()),
            "audience": describe_audience(self.t, stored, names=names, lessons=self.d.lessons),
            "estimate": lines, "form": form_token(request.cookies.get(SESSION_COOKIE, ""), now),
            "at": at.astimezone(self.d.zone).strftime("%H:%M %d/%m/%Y") if at else None,
        }
        return await self._composer(who, ward, draft, preview=preview)

    async def send(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        """Schedule the previewed draft (once per preview: its form token)."""
        form, _ = await read_form(request)
        if not self._csrf(request, form):
            return await self.p.refused(request, who, "form_expired")
        ward = self._ward_of(request, who)
        if ward is None:
            return await self._forbidden(request, who)
        token = form.get("mau", "")
        now = self.d.clock.now()
        if not form_token_ok(request.cookies.get(SESSION_COOKIE), token, now):  # another session's, or a day old
            return await self.p.refused(request, who, "form_expired")
        draft = Draft.from_form(form)
        try:
            audience_text, at = await self._checked(ward, draft)
        except FormError as exc:
            return await self._composer(who, ward, draft, error=str(exc), status=400)
        image = str(self._photo_path(ward, draft.image)) if draft.image else None
        try:
            async with self.d.writes() as session, session.begin():
                if not await self._admin_now(session, who, ward):
                    return await self._forbidden(request, who, session=session)  # the role went since the page
                if not await record_event(session, source=FORM_EVENTS, event_id=token, now=now):
                    done = None  # this preview was sent already (a double submit)
                else:
                    done = await schedule(
                        session, author=f"person:{who.person.id}", text=draft.text, audience_text=audience_text,
                        lesson_ids={lesson.id for lesson in self.d.lessons}, now=now, quiet=self.d.quiet, at=at,
                        image=image, ward=ward.code, learn=draft.learn, catalog=self.d.catalog)
        except BroadcastError as exc:
            return await self._composer(who, ward, draft, error=str(exc), status=400)
        suffix = f"?moi={done.broadcast.id}" if done is not None else ""
        return web.Response(status=303, headers={"Location": f"/web/phuong/{ward.id}/thong-bao{suffix}"})

    # -- cancel -----------------------------------------------------------------------------

    async def cancel(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        form, _ = await read_form(request)
        if not self._csrf(request, form):
            return await self.p.refused(request, who, "form_expired")
        broadcast_id = int(request.match_info["broadcast_id"])
        now = self.d.clock.now()
        async with self.d.writes() as session, session.begin():
            broadcast = await session.get(Broadcast, broadcast_id)
            code = broadcast.audience.get("ward") if broadcast is not None else None
            ward = next((w for w in who.wards if code and w.code == code), None)
            if ward is not None and not await self._admin_now(session, who, ward):
                ward = None  # the role was removed since the page was read
            if ward is not None and await cancel_broadcast(session, broadcast_id=broadcast_id):
                audit.record(session, actor=f"person:{who.person.id}", action="broadcast.cancel",
                             target=f"broadcast:{broadcast_id}", now=now)
        if ward is None:  # another ward's, or none: nothing happened
            return await self._forbidden(request, who)
        return web.Response(status=303, headers={"Location": f"/web/phuong/{ward.id}/thong-bao"})

    # -- the photo --------------------------------------------------------------------------

    @property
    def _photos(self) -> Path:
        return draft_photos(self.d.files_dir)

    async def _photo_in_use(self, ward: Ward, draft: Draft) -> None:
        """The draft's photo is still there (a draft left for a day loses it: ``bot.media``), and
        counts as used from now."""
        if not draft.image:
            return
        try:
            await asyncio.to_thread(keep_draft_photo, self._photo_path(ward, draft.image),
                                    now=self.d.clock.now())
        except FileNotFoundError:
            raise FormError(self.t("web.broadcasts.error_photo_gone")) from None

    def _photo_path(self, ward: Ward, name: str) -> Path:
        """Where a photo uploaded for this ward's broadcasts is kept: a folder per ward
        (``files_dir/in/web/<ward id>``), so a name reaches only its own ward's photos."""
        return self._photos / "web" / str(ward.id) / name

    async def _store_photo(self, ward: Ward, upload: Upload) -> str:
        if upload.too_big:
            raise FormError(self.t("web.broadcasts.error_photo_size", mb=IMAGE_MAX_BYTES // (1024 * 1024)))
        suffix = _photo_type(upload.data)
        if suffix is None:
            raise FormError(self.t("web.broadcasts.error_photo_type"))
        name = f"web-{secrets.token_urlsafe(12)}{suffix}"
        await asyncio.to_thread(keep_draft_photo, self._photo_path(ward, name), upload.data,
                                now=self.d.clock.now())
        return name

    async def photo(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        name = request.match_info["name"]
        if not who.wards:
            return await self._forbidden(request, who)
        # Only a photo uploaded for a ward this person administers (roles read for this request).
        found = next((path for path in (self._photo_path(w, name) for w in who.wards)
                      if DRAFT_PHOTO.fullmatch(name) and path.is_file()), None)
        if found is None:
            raise web.HTTPNotFound()
        kind = "image/png" if name.endswith(".png") else "image/jpeg"
        return web.FileResponse(found, headers={"Content-Type": kind})

    # -- the draft --------------------------------------------------------------------------

    async def _checked(self, ward: Ward, draft: Draft) -> tuple[str, datetime | None]:
        """The draft checked again (on every POST: what is sent is what was previewed): its
        audience's words, its time (None: now); its text, and its photo still there.
        Raises :class:`FormError`."""
        audience_text = await self._audience_text(ward, draft)
        at = self._time(draft)
        self._check_text(draft)
        await self._photo_in_use(ward, draft)  # this ward's folder only: another ward's name is "gone"
        return audience_text, at

    def _check_text(self, draft: Draft) -> None:
        if not draft.text:
            raise FormError(self.t("web.broadcasts.error_text_empty"))
        if len(draft.text) > TEXT_MAX:
            raise FormError(self.t("web.broadcasts.error_text_long", length=len(draft.text), limit=TEXT_MAX))

    async def _audience_text(self, ward: Ward, draft: Draft) -> str:
        """The chat composer's audience words (``storage.broadcasts.parse_audience``)."""
        if draft.audience == "groups":
            async with self.d.reads() as session:
                codes = [g.code for g in await list_groups(session, ward_id=ward.id) if g.id in draft.groups]
            if not codes:
                raise FormError(self.t("web.broadcasts.error_no_group"))
            return "group:" + ",".join(codes)
        if draft.audience == "not_completed":
            if self.d.lessons.get(draft.lesson) is None:
                raise FormError(self.t("web.broadcasts.error_no_lesson"))
            return f"not-completed:{draft.lesson}"
        return "leaders" if draft.audience == "leaders" else "all"

    def _time(self, draft: Draft) -> datetime | None:
        """None: now; else the chosen local time, within the chat's range."""
        if draft.when != "later":
            return None
        try:
            local = datetime.strptime(draft.at, "%Y-%m-%dT%H:%M")
        except ValueError:
            raise FormError(self.t("web.broadcasts.error_time")) from None
        when = local.replace(tzinfo=self.d.zone)
        now = self.d.clock.now()
        if not now - timedelta(minutes=1) <= when <= now + LATEST_MAX:
            raise FormError(self.t("web.broadcasts.error_time_range", days=LATEST_MAX.days))
        return when

    def _message(self, ward: Ward, draft: Draft) -> OutboundMessage:
        return resident_message(self.t, text=draft.text, ward_name=ward.name, learn=draft.learn,
                                image=str(self._photo_path(ward, draft.image)) if draft.image else None)

    def _telegram(self, message: OutboundMessage) -> list[Bubble]:
        return [_bubble(reply) for reply in message_replies(message, self.t, TELEGRAM)]

    async def _zalo(self, message: OutboundMessage, *, numbered: bool) -> list[Bubble]:
        """Zalo's sends: the photo as the chat's composer splits it, the rest through Zalo's
        renderer (options as numbered lines, or as words to type)."""
        bubbles = []
        for reply in message_replies(message, self.t, TELEGRAM):
            if isinstance(reply, Image):
                bubbles.append(_bubble(reply))
            else:
                bubbles += [Bubble(o.text) for o in await zalo_plan(reply, self.t, None, numbered=numbered)]
        return bubbles

    async def _zalo_oa(self, message: OutboundMessage) -> list[Bubble]:
        """A Zalo OA's sends, as its transport makes them (``ZaloOATransport``): the photo
        first, then the consultation messages of ``bot.channels.zalo.oa.oa_messages`` — the
        text, and a button's option as a numbered line and as a button under it."""
        bubbles = [Bubble("", photo=True)] if message.image else []
        for body in await oa_messages(message.as_reply(), self.t, None, numbered=message.numbered):
            buttons = body.get("attachment", {}).get("payload", {}).get("buttons", [])
            bubbles.append(Bubble(str(body.get("text", "")), buttons=tuple(str(b["title"]) for b in buttons)))
        return bubbles


def _bubble(reply: Reply) -> Bubble:
    if isinstance(reply, Image):
        return Bubble(reply.caption, photo=True)
    if isinstance(reply, Menu):
        return Bubble(reply.text, buttons=tuple(o.label for o in reply.options))
    return Bubble(getattr(reply, "text", ""))


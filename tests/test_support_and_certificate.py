"""Help from a person (a resident's question → the group's leaders, or the ward's admins, or
kept for later → the answer back, told when it arrives), and the completion certificate
(after the last lesson, and again from /tiendo). The check before a question is sent and
the same over Telegram: tests/test_helpdesk.py."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from PIL import Image as PILImage

from bot.app import App
from bot.core.messages import Image
from storage.models import AuditLog, HelpRequest, Identity, LessonProgress, Outbox, OutboxStatus, ProgressStatus
from tests.staff import make_admin, make_leader, person_of, rows
from tests.support import Chat, ManualClock, join, pass_lesson

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


async def _press_outbox_option(chat: Chat, row: Outbox, label: str) -> None:
    """What a leader does with the proactive message once the sender delivered it."""
    [action] = [a for text, a in row.payload["options"] if label in text]
    await chat.action(action)


async def test_a_question_reaches_the_leaders_and_the_answer_comes_back(ward: App, clock: ManualClock) -> None:
    lan = Chat(ward.conversation, user="1", name="Lan")
    await join(lan)
    leaders = [Chat(ward.conversation, user=u, name=n) for u, n in (("2", "Ba"), ("3", "Bảy"))]
    for leader in leaders:
        await join(leader)
        await make_leader(ward, leader, "DEMO-TDP03")
    await lan.send("/menu")
    await lan.press("Nhờ hỗ trợ")
    assert "sẽ được chuyển tới tổ trưởng của Tổ dân phố 3 (2 người)" in lan.last_text  # said before asking
    await lan.send("Tôi không đăng nhập được VNeID,\nmáy báo lỗi.")
    assert "đã chuyển câu hỏi tới tổ trưởng (2 người)" in lan.last_text
    [request] = await rows(ward, HelpRequest)
    assert request.text == "Tôi không đăng nhập được VNeID,\nmáy báo lỗi." and request.answered_at is None
    assert request.routed_to == "leaders"
    sent = [r for r in await rows(ward, Outbox) if r.kind == "help"]
    assert len(sent) == 2
    assert sent[0].payload["text"].startswith("🙋 Lan (Tổ dân phố 3) cần hỗ trợ:")
    assert sent[0].payload["options"] == [["✍️ Trả lời", f"hotro:rep:{request.id}"]]
    lan_person = await person_of(ward, lan)
    assert {(r.ref, r.about_person_id, r.due_at) for r in sent} == {
        (f"help_request:{request.id}", lan_person.id, clock.now())}  # due now: the sender keeps the quiet hours

    # The open question is also on the group's page.
    await leaders[1].send("/nhom")
    await leaders[1].press("Câu hỏi của người dân (1)")
    assert "Lan" in leaders[1].last_text and "VNeID" in leaders[1].last_text

    await _press_outbox_option(leaders[0], sent[0], "Trả lời")
    assert "Câu hỏi: \"Tôi không đăng nhập được VNeID" in leaders[0].last_text
    await leaders[0].send("Chiều nay 4 giờ mình qua nhà giúp nhé.")
    assert "Mình đang chuyển câu trả lời tới Lan" in leaders[0].last_text  # 10:00: it leaves now
    [reply] = [r for r in await rows(ward, Outbox) if r.kind == "help_reply"]
    [lan_identity] = [i for i in await rows(ward, Identity) if i.external_id == "1"]
    ba = await person_of(ward, leaders[0])
    assert reply.identity_id == lan_identity.id
    assert (reply.about_person_id, reply.ref, reply.due_at) == (ba.id, f"help_request:{request.id}", clock.now())
    assert "Tổ trưởng Ba trả lời" in reply.payload["text"] and "Chiều nay 4 giờ" in reply.payload["text"]
    assert reply.payload["options"][0] == ["🙋 Hỏi thêm", "hotro:ask"]
    [request] = await rows(ward, HelpRequest)
    assert request.answered_by == ba.id
    # Answered: the forwards still waiting are not sent any more.
    assert {(r.status, r.last_error) for r in await rows(ward, Outbox) if r.kind == "help"} == {
        (OutboxStatus.CANCELLED, "câu hỏi đã được trả lời")}
    audit = [(a.action, a.details) for a in await rows(ward, AuditLog) if a.action.startswith("help.")]
    assert audit == [("help.ask", {"to": "leaders", "recipients": 2}), ("help.list", {}), ("help.reply", {})]
    # "🙋 Hỏi thêm" in the answer asks again.
    await lan.action("hotro:ask")
    assert "sẽ được chuyển tới tổ trưởng của Tổ dân phố 3" in lan.last_text


async def test_with_nobody_to_answer_the_question_is_kept_for_a_leader_appointed_later(
    ward: App, clock: ManualClock
) -> None:
    lan = Chat(ward.conversation, user="1", name="Lan")
    await join(lan)
    await lan.send("/hotro")
    assert "chưa có ai nhận câu hỏi qua đây" in lan.last_text and "hỏi trực tiếp" in lan.last_text  # before typing
    assert [o.action for o in lan.menu.options] == ["hotro:leave", "hotro:no"]
    await lan.press("Vẫn để lại câu hỏi")
    await lan.send("Làm sao để cài VNeID?")
    assert "Mình đã lưu câu hỏi của bạn" in lan.last_text
    [kept] = await rows(ward, HelpRequest)
    assert (kept.text, kept.routed_to, kept.answered_at) == ("Làm sao để cài VNeID?", "nobody", None)
    assert [r for r in await rows(ward, Outbox) if r.kind == "help"] == []

    # An admin arrives: the next question goes to the ward's admins, at 07:00 if asked at night.
    admin = Chat(ward.conversation, user="9", name="Cán bộ Hà")
    await join(admin, group_code="DEMO-TDP01")
    await make_admin(ward, admin)
    clock._now = datetime(2026, 11, 23, 22, 0, tzinfo=ZONE).astimezone(UTC)
    await lan.send("/hotro")
    assert "sẽ được chuyển tới cán bộ phường (1 người)" in lan.last_text
    await lan.send("Ai giúp tôi với?")
    assert "chuyển câu hỏi tới cán bộ phường (1 người)" in lan.last_text and "lúc 07:00 24/11/2026" in lan.last_text
    [row] = [r for r in await rows(ward, Outbox) if r.kind == "help"]
    assert row.due_at == clock.now()  # planned now; the sender holds it until 07:00
    second = (await rows(ward, HelpRequest))[1]
    assert second.routed_to == "admins"

    # A leader appointed later finds both open questions on the dashboard and answers at night.
    ba = Chat(ward.conversation, user="2", name="Ba")
    await join(ba)
    await make_leader(ward, ba, "DEMO-TDP03")
    await ba.send("/nhom")
    await ba.press("Câu hỏi của người dân (2)")
    assert "Làm sao để cài VNeID?" in ba.last_text and "Ai giúp tôi với?" in ba.last_text
    await ba.action(f"hotro:rep:{second.id}")
    await ba.send("Sáng mai mình qua nhà nhé.")
    assert "Bây giờ là giờ nghỉ, nên câu trả lời sẽ tới Lan lúc 07:00 24/11/2026" in ba.last_text
    [row] = [r for r in await rows(ward, Outbox) if r.kind == "help"]
    assert (row.status, row.last_error) == (OutboxStatus.CANCELLED, "câu hỏi đã được trả lời")  # not at 07:00
    await ba.send("/nhom")
    await ba.press("Câu hỏi của người dân (1)")
    assert "Làm sao để cài VNeID?" in ba.last_text and "Ai giúp tôi với?" not in ba.last_text


async def test_the_certificate_comes_with_the_last_lesson_and_from_progress(ward: App, clock: ManualClock) -> None:
    lan = Chat(ward.conversation, user="1", name="Lan Nguyễn")
    await join(lan)
    await lan.action("cert")
    assert "Giấy chứng nhận sẽ có khi bạn hoàn thành cả 13 bài" in lan.last_text
    lessons = list(ward.lessons)
    for lesson in lessons[:-1]:
        replies = await pass_lesson(lan, lesson)
        assert not any(isinstance(r, Image) for r in replies)
    clock._now = datetime(2026, 11, 30, 23, 30, tzinfo=ZONE).astimezone(UTC)  # still the 30th in Hà Nội
    replies = await pass_lesson(lan, lessons[-1])
    [image] = [r for r in replies if isinstance(r, Image)]
    assert "Chúc mừng Lan Nguyễn đã hoàn thành cả 13 bài học!" in image.caption
    picture = PILImage.open(image.path)
    assert picture.format == "PNG" and picture.size[0] >= 1000
    # Learning a lesson again later brings no second certificate.
    replies = await pass_lesson(lan, lessons[0])
    assert not any(isinstance(r, Image) for r in replies)
    await lan.send("/tiendo")
    assert "🎓 Giấy chứng nhận" in [o.label for o in lan.menu.options]
    replies = await lan.press("Giấy chứng nhận")
    [again] = [r for r in replies if isinstance(r, Image)]
    assert again.path != image.path and again.path.read_bytes() == image.path.read_bytes()  # same name, date, ward
    progress = await rows(ward, LessonProgress)
    assert all(p.status == ProgressStatus.COMPLETED for p in progress) and len(progress) == 13

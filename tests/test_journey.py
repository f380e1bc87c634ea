"""The resident's journey through the conversation engine (no channel), on SQLite and
PostgreSQL: join, learn, quiz, completion, progress, deletion."""

from __future__ import annotations

from sqlmodel import select

from bot.app import App
from storage.models import (
    AuditLog,
    ConversationState,
    Identity,
    LessonProgress,
    Person,
    ProgressStatus,
    QuizAnswer,
    ResidentGroup,
)
from tests.conftest import seed_demo_groups
from tests.support import NUMBERED, Chat, join, pass_lesson


async def _rows(app: App, model: type) -> list:
    async with app.sessions() as session:
        return list((await session.exec(select(model))).all())


async def test_resident_learns_a_lesson_end_to_end(any_app: App) -> None:
    app = any_app
    await seed_demo_groups(app)
    chat = Chat(app.conversation)
    lesson = app.lessons.first

    replies = await chat.send("/start g_DEMO-TDP03")
    assert "đồng ý" in chat.texts(replies).lower()
    assert await _rows(app, Person) == []  # nothing personal before consent

    await chat.press("Đồng ý")
    assert "Lan Nguyễn" in chat.last_text
    await chat.press("Đúng rồi")
    assert "Tổ dân phố 3" in chat.last_text and "Phường Mẫu" in chat.last_text
    await chat.press("Đúng rồi")
    assert [o.action for o in chat.menu.options] == ["next", "lessons:0", "progress", "reminders", "hotro", "help"]

    await chat.press("Học tiếp")
    assert lesson.cards[0].text in chat.last_text
    for number in range(1, len(lesson.cards)):
        replies = await chat.press("Tiếp")
        assert replies[0].replace, "turning a card edits it in place where the channel can"
        assert lesson.cards[number].text in chat.last_text
    await chat.press("Quay lại")
    await chat.press("Tiếp")
    await chat.press("Làm bài kiểm tra")
    for question in lesson.quiz.questions:
        assert question.text in chat.last_text
        replies = await chat.action(chat.menu.options[question.answer_index].action)
        assert "✅ Đúng rồi" in replies[0].text and question.explanation in replies[0].text
    assert "3/3" in chat.last_text and "hoàn thành" in chat.last_text
    following = app.lessons.after(lesson.id)
    assert following is not None and chat.option("Học tiếp bài").action == f"lesson:{following.id}"

    [person] = await _rows(app, Person)
    [group] = [g for g in await _rows(app, ResidentGroup) if g.id == person.group_id]
    assert (person.display_name, group.code) == ("Lan Nguyễn", "DEMO-TDP03")
    assert person.consent_at is not None and person.consent_version
    [progress] = await _rows(app, LessonProgress)
    assert (progress.person_id, progress.lesson_id, progress.status) == (person.id, lesson.id, ProgressStatus.COMPLETED)
    assert (progress.score, progress.attempts, progress.lesson_version) == (3, 1, lesson.version)
    assert progress.started_at is not None and progress.completed_at is not None
    assert len(await _rows(app, QuizAnswer)) == 3

    await chat.send("/tiendo")
    assert f"▓░░░░░░░░░ 1/{len(app.lessons)}" in chat.last_text
    assert f"✅ 1. {lesson.title} (3/3)" in chat.last_text


async def test_failing_the_quiz_offers_retry_and_review_and_a_retry_can_pass(app: App) -> None:
    await seed_demo_groups(app)
    chat = Chat(app.conversation)
    await join(chat)
    lesson = app.lessons.first
    await pass_lesson(chat, lesson, correct=1)
    assert "1/3" in chat.last_text and "Làm lại" in " ".join(o.label for o in chat.menu.options)
    assert chat.option("Xem lại").action == f"lesson:{lesson.id}:0"
    [progress] = await _rows(app, LessonProgress)
    assert progress.status == ProgressStatus.IN_PROGRESS and progress.attempts == 1

    await chat.press("Làm lại")
    for question in lesson.quiz.questions:
        await chat.action(chat.menu.options[question.answer_index].action)
    [progress] = await _rows(app, LessonProgress)
    assert (progress.status, progress.score, progress.attempts) == (ProgressStatus.COMPLETED, 3, 2)


async def test_a_lower_score_later_never_takes_a_completion_away(app: App) -> None:
    await seed_demo_groups(app)
    chat = Chat(app.conversation)
    await join(chat)
    lesson = app.lessons.first
    await pass_lesson(chat, lesson)
    await pass_lesson(chat, lesson, correct=0)
    [progress] = await _rows(app, LessonProgress)
    assert (progress.status, progress.score, progress.attempts) == (ProgressStatus.COMPLETED, 3, 2)


async def test_group_is_chosen_from_a_paged_list_or_found_by_name_without_diacritics(ward: App) -> None:
    chat = Chat(ward.conversation)
    await join(chat, group_code=None)
    labels = [o.label for o in chat.menu.options]
    assert len(labels) == 9 and labels[-1] == "Trang sau ▶"  # 8 groups and a next page
    await chat.press("Trang sau")
    assert [o.label for o in chat.menu.options][:2] == ["Tổ dân phố Hòa An", "Tổ dân phố Thuận Phước"]
    await chat.send("bac son")  # typed without diacritics
    assert "Tổ dân phố Bắc Sơn" in chat.last_text
    await chat.send("dung roi")  # "đúng rồi", typed without diacritics, picks the option
    [person] = await _rows(ward, Person)
    groups = {g.id: g.code for g in await _rows(ward, ResidentGroup)}
    assert groups[person.group_id] == "DEMO-TDP08"


async def test_numbered_menus_take_a_typed_number(ward: App) -> None:
    chat = Chat(ward.conversation, capabilities=NUMBERED, name=None)
    await chat.send("/start")
    await chat.send("1")  # Đồng ý
    await chat.send("Bác Minh")  # no name from the channel: typed
    await chat.send("4")  # searches for tổ 4 (the list is lettered): "Tổ dân phố 4, đúng không?"
    await chat.send("1")  # Đúng rồi
    await chat.send("1")  # Học tiếp
    assert ward.lessons.first.cards[0].text in chat.last_text
    await chat.send("9")  # out of range: nothing happens; the card is shown again with its options
    assert "chưa hiểu" in chat.last_text and ward.lessons.first.cards[0].text in chat.last_text
    assert [o.label for o in chat.menu.options][0] == "Tiếp ▶"
    [person] = await _rows(ward, Person)
    assert person.display_name == "Bác Minh"


async def test_a_join_link_with_an_unknown_code_falls_back_to_the_list(ward: App) -> None:
    chat = Chat(ward.conversation)
    await chat.send("/start g_NOPE")
    await chat.press("Đồng ý")
    await chat.press("Đúng rồi")
    assert "không đúng" in chat.texts() and "Tổ dân phố 1" in [o.label for o in chat.menu.options]


async def test_declining_consent_leaves_no_trace(ward: App) -> None:
    chat = Chat(ward.conversation)
    await chat.send("/start")
    await chat.press("Không đồng ý")
    assert await _rows(ward, Person) == []
    assert await _rows(ward, Identity) == []
    assert await _rows(ward, ConversationState) == []


async def test_deleting_my_data_keeps_only_anonymous_counts(any_app: App) -> None:
    app = any_app
    await seed_demo_groups(app)
    chat = Chat(app.conversation)
    await join(chat)
    await pass_lesson(chat, app.lessons.first)
    await chat.send("/xoadulieu")
    assert "không hoàn tác" in chat.last_text
    await chat.press("Xóa dữ liệu")
    assert "Đã xóa" in chat.last_text

    [person] = await _rows(app, Person)
    assert person.display_name is None and person.deleted_at is not None and person.consent_at is None
    assert person.group_id is not None  # the group keeps its anonymous count
    assert await _rows(app, Identity) == [] and await _rows(app, ConversationState) == []
    assert await _rows(app, QuizAnswer) == []
    [progress] = await _rows(app, LessonProgress)
    assert progress.status == ProgressStatus.COMPLETED
    [entry] = [a for a in await _rows(app, AuditLog) if a.action == "person.erase"]
    assert entry.target == f"person:{person.id}"

    # A message after deletion starts afresh, asking for consent again.
    replies = await chat.send("xin chào")
    assert "Xin chào!" in chat.texts(replies)
    assert chat.option("Đồng ý").action == "consent:yes"
    await chat.action(f"lesson:{app.lessons.first.id}")  # an old button after deletion
    assert "Mình chưa có thông tin của bạn" in chat.texts()


async def test_erase_needs_the_confirmation_step(ward: App) -> None:
    chat = Chat(ward.conversation)
    await join(chat)
    await chat.action("erase:yes")  # forged: no confirmation was asked
    assert "Nút này đã cũ" in chat.last_text
    [person] = await _rows(ward, Person)
    assert person.deleted_at is None and person.display_name == "Lan Nguyễn"


async def test_changing_name_and_group_later(ward: App) -> None:
    chat = Chat(ward.conversation)
    await join(chat)
    await chat.send("/doiten")
    await chat.send("  Cô   Lan\t")
    assert "Cô Lan" in chat.last_text
    await chat.send("/doito")
    await chat.press("Tổ dân phố 5")
    assert "Đã chuyển bạn sang Tổ dân phố 5" in chat.last_text
    [person] = await _rows(ward, Person)
    assert person.display_name == "Cô Lan"


async def test_without_groups_a_resident_can_still_learn(app: App) -> None:
    chat = Chat(app.conversation)
    await chat.send("/start")
    await chat.press("Đồng ý")
    await chat.press("Đúng rồi")
    assert "chưa nhập danh sách tổ" in chat.last_text
    await pass_lesson(chat, app.lessons.first)
    [progress] = await _rows(app, LessonProgress)
    assert progress.status == ProgressStatus.COMPLETED


async def test_returning_resident_is_welcomed_back_and_continues(ward: App, clock) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(ward.conversation)
    await join(chat)
    await chat.action(f"lesson:{ward.lessons.first.id}")
    clock.advance(days=3)
    await chat.send("/start")
    assert "quay lại" in chat.last_text
    await chat.press("Học tiếp")
    assert ward.lessons.first.title in chat.last_text  # the lesson in progress, not the next one

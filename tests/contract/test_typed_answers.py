"""Issue 10, sections 1–3, on every channel: replies typed the way people type them, help
when she is confused, and nothing she did lost (the same card, the same question, a way
out of every text step).

Each test runs once per channel (terminal, Telegram through the fake Bot API, Zalo through the
fake Zalo server); what is typed is sent as text on every channel, never pressed.
"""

from __future__ import annotations

import re

from sqlmodel import select

from bot.app import App
from bot.core.text import fold
from bot.curriculum import Lesson
from storage.models import HelpRequest, Identity, LessonProgress, Person, QuizAnswer
from tests.contract.drivers import Driver, menu_marks
from tests.contract.journeys import NAME, join_group, learn_lesson

# Ways of typing the second option of the main menu ("📚 Tất cả bài học").
SECOND_OPTION = ["2", "2.", "số 2", "so 2", "2️⃣", "②", "２", "hai", "Tất cả bài học", "tat ca bai hoc",
                 "TAT CA", "tất cả bài hoc", "tat ca bai hco"]


async def _person(app: App, d: Driver) -> Person:
    async with app.sessions() as session:
        identity = (await session.exec(select(Identity).where(
            Identity.channel == d.channel, Identity.external_id == d.external_id))).one()
        person = await session.get(Person, identity.person_id)
        assert person is not None
        return person


def _hints(text: str) -> int:
    return len(re.findall(r"\(Gõ ", text))


async def test_a_typed_number_word_or_label_picks_the_option(ward: App, driver: Driver) -> None:
    await join_group(driver)
    for typed in SECOND_OPTION:
        await driver.send(typed)
        assert "Các bài học" in driver.last_text(), typed
        await driver.send("/menu")


def _question_with_a_number(lesson: Lesson) -> int | None:
    """A question whose right answer holds a number no other answer holds ("Mức 2")."""
    for index, question in enumerate(lesson.quiz.questions):
        tokens = [set(re.findall(r"\d+", option)) for option in question.options]
        right = tokens[question.answer_index]
        if len(right) == 1 and not any(right & other for i, other in enumerate(tokens) if i != question.answer_index):
            return index
    return None


async def test_quiz_answers_are_letters_and_a_number_in_an_answer_is_the_answer(ward: App, driver: Driver) -> None:
    lessons = list(ward.lessons)
    lesson, with_number = next((l, i) for l in lessons if (i := _question_with_a_number(l)) is not None)
    await join_group(driver)
    await driver.send("/baihoc")
    await driver.choose(lesson.title)
    for _ in range(1, len(lesson.cards)):
        await driver.choose("Tiếp")
    await driver.choose("Làm bài kiểm tra")
    forms = ["{l}", "câu {l}", "ý {L}", "Câu {L}.", "đáp án {l}"]
    for number, question in enumerate(lesson.quiz.questions):
        asked = driver.last_text()
        assert question.text in asked
        if driver.channel != "telegram":  # lettered lines where menus are text
            assert [mark for mark, _ in menu_marks(asked)][:len(question.options)] == ["A", "B", "C"][:len(question.options)]
        letter = "ABC"[question.answer_index]
        if number == with_number:
            typed = re.findall(r"\d+", question.options[question.answer_index])[0]
        else:
            typed = forms[number % len(forms)].format(l=letter.lower(), L=letter)
        await driver.send(typed)
        following = lesson.quiz.questions[number + 1].text if number + 1 < len(lesson.quiz.questions) else "hoàn thành"
        assert following in driver.last_text(), (typed, driver.last_text())
    person = await _person(ward, driver)
    async with ward.sessions() as session:
        answers = (await session.exec(select(QuizAnswer).where(QuizAnswer.person_id == person.id))).all()
    assert len(answers) == len(lesson.quiz.questions) and all(a.correct for a in answers)


async def test_a_keyword_or_a_small_typo_picks_an_option_and_an_ambiguous_one_asks(ward: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.send("tien do")  # "📊 Tiến độ của tôi" by its words
    assert "0/" in driver.last_text() and "▓" not in driver.last_text().split("\n")[0] or "Tổ dân phố 3" in driver.last_text()
    await driver.send("/menu")
    await driver.send("huong dan")
    assert "/hoc" in driver.last_text()
    await driver.send("/menu")
    await driver.send("nhac nhơ")  # "⏰ Nhắc nhở", one letter off
    assert "nhắc" in driver.last_text().lower()
    await driver.send("/menu")
    await driver.send("hoc")  # "📖 Học tiếp" or "📚 Tất cả bài học"?
    text = driver.last_text()
    assert "Bạn muốn chọn «📖 Học tiếp» hay «📚 Tất cả bài học»?" in text
    await driver.send("tiep")  # answers the question: it was asked again with its options
    assert ward.lessons.first.cards[0].text in driver.last_text()


async def test_confusion_gets_where_she_is_how_to_answer_and_a_way_out(ward: App, driver: Driver) -> None:
    lesson = ward.lessons.first
    await join_group(driver)
    await driver.choose("Học tiếp")
    await driver.choose("Tiếp")
    for number, typed in enumerate(("tôi không hiểu", "giúp", "làm sao", "alo", "?", "menu")):
        await driver.send(typed)
        text = driver.last_text()
        assert f"trang 2/{len(lesson.cards)}" in text and lesson.cards[1].text in text, typed
        assert {"🙋 Hỏi tổ trưởng", "🏠 Về menu chính"} <= set(driver.options()), typed
        assert ("Ví dụ" in text) == (number > 0), typed  # the second miss in a row shows how
        if driver.channel == "telegram":
            assert "chạm vào một nút" in text
        else:
            assert _hints(text) == 1, text
    # Still on the same card: "Tiếp" goes on with the lesson; then a miss is a first miss again.
    await driver.choose("Tiếp")
    assert lesson.cards[2].text in driver.last_text()
    await driver.send("bla bla")
    assert "Ví dụ" not in driver.last_text() and lesson.cards[2].text in driver.last_text()
    await driver.send("bla bla")
    assert "Ví dụ" in driver.last_text() and lesson.cards[2].text in driver.last_text()
    # And the way out is taken by typing its words too.
    await driver.send("về menu chính")
    assert "📚 Tất cả bài học" in driver.options()


async def test_a_greeting_gets_a_greeting_and_the_menu(ward: App, driver: Driver) -> None:
    await join_group(driver)
    await driver.choose("Học tiếp")
    await driver.send("Xin chào")
    text = driver.last_text()
    assert f"Chào mừng {NAME} quay lại" in text and "chọn một mục" not in text
    assert "📖 Học tiếp" in driver.options()


async def test_leaving_a_lesson_and_coming_back_opens_the_same_card(ward: App, driver: Driver) -> None:
    lesson = ward.lessons.first
    await join_group(driver)
    await driver.choose("Học tiếp")
    await driver.choose("Tiếp")
    await driver.choose("Tiếp")
    await driver.send("/tiendo")
    await driver.send("/hoc")
    assert lesson.cards[2].text in driver.last_text()
    await driver.send("/menu")
    await driver.choose("Học tiếp")
    assert lesson.cards[2].text in driver.last_text()


async def test_a_quiz_left_half_answered_resumes_at_the_same_question(ward: App, driver: Driver) -> None:
    lesson = ward.lessons.first
    questions = lesson.quiz.questions
    await join_group(driver)
    await driver.choose("Học tiếp")
    for _ in range(1, len(lesson.cards)):
        await driver.choose("Tiếp")
    await driver.choose("Làm bài kiểm tra")
    await driver.choose(questions[0].options[questions[0].answer_index])
    assert questions[1].text in driver.last_text()
    await driver.send("/hoc")  # in the middle of the quiz: offered to go on with it
    assert "📝 Làm tiếp bài kiểm tra" in driver.options() and "1/3" in driver.last_text()
    await driver.send("/start")
    assert "📝 Làm tiếp bài kiểm tra" in driver.options()
    await driver.choose("Làm tiếp bài kiểm tra")
    assert questions[1].text in driver.last_text()
    for question in questions[1:]:
        await driver.choose(question.options[question.answer_index])
    assert f"{len(questions)}/{len(questions)}" in driver.last_text() and "hoàn thành" in driver.last_text()
    person = await _person(ward, driver)
    async with ward.sessions() as session:
        answers = (await session.exec(select(QuizAnswer).where(QuizAnswer.person_id == person.id))).all()
        progress = (await session.exec(select(LessonProgress).where(LessonProgress.person_id == person.id))).one()
    assert sorted(a.attempt for a in answers) == [1] * len(questions) and progress.attempts == 1


async def test_typed_cancel_words_leave_every_text_step_and_are_never_kept(ward: App, driver: Driver) -> None:
    await join_group(driver)
    for command, word in (("/doiten", "thôi"), ("/doiten", "Hủy"), ("/hotro", "hủy"), ("/hotro", "thoi"),
                          ("/doito", "không đổi nữa"), ("/doito", "thôi")):
        await driver.send(command)
        await driver.send(word)
        assert "Đã hủy" in driver.last_text() or "Không sao" in driver.last_text(), (command, word)
        assert "📖 Học tiếp" in driver.options()
    person = await _person(ward, driver)
    assert person.display_name == NAME
    async with ward.sessions() as session:
        assert (await session.exec(select(HelpRequest))).all() == []
        group = person.group_id
    assert group is not None


async def test_after_a_lesson_the_next_unfinished_one_is_offered_even_after_the_last(ward: App, driver: Driver) -> None:
    lessons = list(ward.lessons)
    await join_group(driver)
    # The last lesson first: what is offered next is the first one not finished.
    await driver.send("/baihoc")
    while not any(fold(lessons[-1].title) in fold(label) for _, label in menu_marks(driver.last_text())) and \
            driver.channel != "telegram":
        await driver.choose("Trang sau")
    if driver.channel == "telegram":
        await driver.choose("Trang sau")
    await driver.choose(lessons[-1].title)
    last = lessons[-1]
    for _ in range(1, len(last.cards)):
        await driver.choose("Tiếp")
    await driver.choose("Làm bài kiểm tra")
    for question in last.quiz.questions:
        await driver.choose(question.options[question.answer_index])
    assert f"▶ Học tiếp bài 1: {lessons[0].title}" in driver.options()
    await driver.choose("Học tiếp bài 1")
    assert lessons[0].cards[0].text in driver.last_text()


async def test_a_failed_retake_says_the_lesson_stays_completed(ward: App, driver: Driver) -> None:
    lesson = ward.lessons.first
    await join_group(driver)
    await learn_lesson(driver, lesson)
    await driver.send("/baihoc")
    await driver.choose(lesson.title)
    for _ in range(1, len(lesson.cards)):
        await driver.choose("Tiếp")
    await driver.choose("Làm bài kiểm tra")
    for question in lesson.quiz.questions:
        wrong = next(o for i, o in enumerate(question.options) if i != question.answer_index)
        await driver.choose(wrong)
    assert "vẫn được tính là đã hoàn thành" in driver.last_text()

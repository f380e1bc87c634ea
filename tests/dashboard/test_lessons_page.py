"""The dashboard's lesson pages over HTTP, against the real app of ``world``: each lesson's cards
and questions in the very words the chat sends, its sources, version and reviewed date, and
per question the answers given through the real conversation — how many, the share right and
the wrong option chosen most — for the viewer's residents only (a leader: their groups; an
admin: the ward), counted by one aggregate over ``quiz_answer``."""

from __future__ import annotations

import re
from collections import Counter
from html import unescape

import aiohttp

from bot.curriculum import Lesson
from storage.answers import answer_counts
from storage.models import Person, QuizAnswer
from tests.dashboard.conftest import World
from tests.dashboard.test_signin import Browser, browser, signed_in  # noqa: F401 (a fixture)
from tests.staff import group, rows, ward as ward_of
from tests.support import Chat, open_quiz, sqlite_plans


async def answer_quiz(chat: Chat, lesson, picks: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Read the lesson and answer its questions with the options at ``picks`` (0-based)."""
    await open_quiz(chat, lesson)
    for pick in picks:
        await chat.action(chat.menu.options[pick].action)


def question(page: str, number: int) -> dict[str, object]:
    """What the page says of question ``number``: its text, each option's count, the stats."""
    article = re.search(rf'<article class="question"[^>]*data-question="{number}">(.*?)</article>', page, re.S)
    assert article, number
    body = article.group(1)
    stats = {name: unescape(value).strip()
             for name, value in re.findall(r'data-stat="([a-z-]+)">([^<]*)<', body)}
    counts = {mark: int(count) for mark, count in
              re.findall(r'<tr data-option="([A-Z])">.*?<td class="num">(\d+)</td>', body, re.S)}
    text = unescape(re.search(r'<h3 [^>]*class="chat-text">(.*?)</h3>', body, re.S).group(1))  # type: ignore[union-attr]
    return {"text": text, "counts": counts, **stats}


async def lesson_page(world: World, chat: Chat, browser: Browser, lesson: Lesson) -> str:
    """The lesson's page as ``chat`` reads it, signed in through a fresh ``/web`` link."""
    await signed_in(world, chat, browser)
    status, page = await browser.get(f"{world.base}/web/bai-hoc/{lesson.id}")
    assert status == 200
    return page


async def test_the_statistics_count_the_answers_given_in_the_chat_for_each_viewer(any_world: World,
                                                                                    browser: Browser) -> None:
    world = any_world
    first = world.app.lessons.first
    # Bình, Lan (Tổ 3), An (Tổ 1) and Dũng (Tổ 5) passed it, all right (conftest). Chi (Tổ 3)
    # answers its first question "B. Tài khoản Facebook"; Dũng retakes it twice and answers
    # "A. Tài khoản Zalo" both times: the ward's most chosen wrong answer is A, Tổ 3's is B.
    chi = Chat(world.app.conversation, user="1005", name="Chi")
    dung = Chat(world.app.conversation, user="1006", name="Dũng")
    right = [q.answer_index for q in first.quiz.questions]
    assert right[0] == 2
    await answer_quiz(chi, first, [1, right[1], right[2]])
    for _ in range(2):
        await answer_quiz(dung, first, [0, right[1], right[2]])

    # The recount: plain Python over every answer row and where its person is now.
    answers = await rows(world.app, QuizAnswer)
    groups = {p.id: p.group_id for p in await rows(world.app, Person)}
    tdp03 = await group(world.app, "DEMO-TDP03")
    q1 = [a for a in answers if (a.lesson_id, a.question_id) == (first.id, "q1")]
    assert Counter(a.choice for a in q1) == {2: 4, 0: 2, 1: 1}
    assert Counter(a.choice for a in q1 if groups[a.person_id] == tdp03.id) == {2: 2, 1: 1}

    page = await lesson_page(world, world.admin, browser, first)
    shown = question(page, 1)
    assert shown["counts"] == {"A": 2, "B": 1, "C": 4}
    assert (shown["answered"], shown["right"], shown["most-wrong"]) == ("7", "57%", "A. Tài khoản Zalo")
    for number, q in enumerate(first.quiz.questions[1:], 2):  # every other answer was right
        expected = Counter(a.choice for a in answers if (a.lesson_id, a.question_id) == (first.id, q.id))
        assert question(page, number)["counts"] == {"ABC"[i]: expected.get(i, 0) for i in range(3)}
        assert question(page, number)["most-wrong"] == "chưa có ai chọn sai"

    leader = Browser()
    try:
        page = await lesson_page(world, world.leader, leader, first)
        shown = question(page, 1)
        assert shown["counts"] == {"A": 0, "B": 1, "C": 2}
        assert (shown["answered"], shown["right"], shown["most-wrong"]) == ("3", "67%", "B. Tài khoản Facebook")
        assert "Tổ dân phố 3" in unescape(page)
    finally:
        await leader.close()


async def test_one_aggregate_statement_without_a_parameter_per_person(world: World) -> None:
    ward = await ward_of(world.app)
    assert ward.id is not None
    found: dict[object, object] = {}

    async def work() -> None:
        async with world.app.sessions() as session:
            found.update(await answer_counts(session, ward_ids=[ward.id]))

    plans = await sqlite_plans(world.app, work, touching="quiz_answer")
    [(statement, _)] = plans
    assert "GROUP BY quiz_answer.lesson_id, quiz_answer.question_id, quiz_answer.choice" in statement
    assert "WHERE resident_group.ward_id IN (?) GROUP BY" in statement  # the ward, no one's id
    first = world.app.lessons.first
    assert found[(first.id, "q1")].answered == 4  # type: ignore[attr-defined]
    async with world.app.sessions() as session:
        assert await answer_counts(session) == {}  # no scope, nothing


async def test_cards_and_questions_are_the_chats_words_with_sources_version_and_review(world: World,
                                                                                      browser: Browser) -> None:
    lesson = world.app.lessons.first
    page = await lesson_page(world, world.leader, browser, lesson)
    cards = [unescape(c) for c in re.findall(r'<p class="chat-text" data-card="\d+">(.*?)</p>', page, re.S)]
    # What a resident is sent, card by card and question by question, through the conversation.
    chi = Chat(world.app.conversation, user="1005", name="Chi")
    sent = []
    await chi.action(f"lesson:{lesson.id}:0")
    sent.append(chi.menu.text)
    for _ in range(len(lesson.cards) - 1):
        await chi.press("Tiếp")
        sent.append(chi.menu.text)
    assert cards == sent
    replies = await chi.press("Làm bài kiểm tra")
    assert unescape(re.search(r'<h2 id="kiem-tra">.*?<p class="chat-text">(.*?)</p>', page, re.S).group(1)) \
        in chi.texts(replies)  # type: ignore[union-attr]
    for number in range(1, len(lesson.quiz.questions) + 1):
        assert question(page, number)["text"] == chi.menu.text
        assert [o.label for o in chi.menu.options] == lesson.quiz.questions[number - 1].options
        await chi.action(chi.menu.options[0].action)
    for source in lesson.sources:
        assert f'data-source="{source.id}"' in page and f'href="{source.url}"' in page
    assert re.search(r'data-fact="version">(\d+)<', page).group(1) == str(lesson.version)  # type: ignore[union-attr]
    year, month, day = (lesson.reviewed or "").split("-")
    assert re.search(r'data-fact="reviewed">([^<]+)<', page).group(1) == f"{day}/{month}/{year}"  # type: ignore[union-attr]

    status, listing = await browser.get(f"{world.base}/web/bai-hoc")
    assert status == 200
    assert re.findall(r'<tr data-lesson="([a-z0-9-]+)">', listing) == [l.id for l in world.app.lessons]
    status, missing = await browser.get(f"{world.base}/web/bai-hoc/no-such-lesson")
    assert status == 404 and "Không có bài học này" in missing


async def test_nobody_signed_in_gets_401_and_a_resident_no_session(world: World) -> None:
    lesson = world.app.lessons.first
    async with aiohttp.ClientSession() as anonymous:
        for path in ("/web/bai-hoc", f"/web/bai-hoc/{lesson.id}"):
            async with anonymous.get(world.base + path) as response:
                assert response.status == 401, path
    replies = await world.resident.send("/web")
    assert "/web/vao/" not in world.resident.texts(replies)

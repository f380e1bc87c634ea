"""The dashboard's lesson pages (issue 13, page 5): every lesson as residents read it in the
chat, with what reviewers need (sources, version, reviewed date), and how residents answered
its quiz.

- ``GET /web/bai-hoc``: every lesson of the library, in learning order.
- ``GET /web/bai-hoc/<lesson>``: its cards and quiz in the chat's own words
  (``handlers.lessons.card_text``, ``handlers.quiz.question_text``, the catalogue's feedback
  texts), its sources and onward links, and per question: how many answers, the share right,
  and the wrong option chosen most.

Leaders and admins: the answers counted are those of the viewer's residents — a leader's
groups, an admin's ward (both, for someone who is both) — in one aggregate
(``storage.answers.answer_counts``), read in one short transaction before rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.core.messages import Marks
from bot.curriculum import Lesson
from bot.dashboard.access import Viewer
from bot.dashboard.pages import Pages
from bot.reports.wording import COMPETENCE_TEXT
from handlers.lessons import card_text
from handlers.quiz import question_text
from storage.answers import QuestionAnswers, answer_counts


@dataclass(frozen=True)
class QuestionView:
    """One question as the page shows it."""

    number: int  # 1-based
    text: str  # as the chat asks it
    options: list[tuple[str, str]]  # (mark, words): "A", "Tài khoản mức 2"
    answer: int  # the right option, 0-based
    right_feedback: str
    wrong_feedback: str
    answers: QuestionAnswers

    @property
    def most_wrong(self) -> tuple[str, str, int] | None:
        """(mark, words, answers) of the wrong option chosen most; None if none was chosen."""
        found = self.answers.most_chosen_wrong(self.answer)
        if found is None:
            return None
        option, count = found
        return self.options[option][0], self.options[option][1], count


def local_date(text: str | None) -> str | None:
    """A lesson file's date as Vietnamese write it: "2026-03-13" → "13/03/2026", "2026-03" →
    "03/2026", "2025" stays; none: None (the page says the catalogue's ``web.lessons.no_date``)."""
    if not text:
        return None
    return "/".join(reversed(text.split("-")))


def lesson_routes(pages: Pages) -> list[web.RouteDef]:
    return LessonPages(pages).routes()


class LessonPages:
    def __init__(self, pages: Pages) -> None:
        self.p = pages
        self.d = pages.d

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/web/bai-hoc", self.p.page(self.list_lessons)),
            web.get("/web/bai-hoc/{lesson_id:[a-z0-9-]{1,32}}", self.p.page(self.show_lesson)),
        ]

    async def _answers(self, who: Viewer) -> dict[tuple[str, str], QuestionAnswers]:
        async with self.d.reads() as session:
            return await answer_counts(session, ward_ids=[w.id for w in who.wards if w.id is not None],
                                       group_ids=[g.id for g in who.groups if g.id is not None])

    def _scope(self, who: Viewer) -> str:
        """Whose answers the page counts, in words."""
        names = [w.name for w in who.wards] + [g.name for g in who.groups if not who.may_see_ward(g.ward_id)]
        return ", ".join(names)

    def _questions(self, lesson: Lesson, answers: dict[tuple[str, str], QuestionAnswers]) -> list[QuestionView]:
        t = self.p.t
        views = []
        for number, question in enumerate(lesson.quiz.questions):
            right = question.options[question.answer_index]
            views.append(QuestionView(
                number=number + 1, text=question_text(t, lesson, number),
                options=[(Marks.LETTERS.of(i), words) for i, words in enumerate(question.options)],
                answer=question.answer_index,
                right_feedback=t("quiz.correct", explanation=question.explanation),
                wrong_feedback=t("quiz.wrong", answer=right, explanation=question.explanation),
                answers=answers.get((lesson.id, question.id)) or QuestionAnswers(lesson.id, question.id),
            ))
        return views

    async def list_lessons(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        answers = await self._answers(who)
        rows = [(self.d.lessons.position(lesson.id), lesson, self.p.t(COMPETENCE_TEXT[lesson.competence]),
                 self._questions(lesson, answers)) for lesson in self.d.lessons]
        return self.p.render("lessons.html", viewer=who, rows=rows, scope=self._scope(who), day=local_date,
                             title=self.p.t("web.lessons.title"))

    async def show_lesson(self, request: web.Request, who: Viewer) -> web.StreamResponse:
        lesson = self.d.lessons.get(request.match_info["lesson_id"])
        if lesson is None:
            return self.p.render("message.html", status=404, viewer=who, title=self.p.t("web.lessons.not_found"),
                                 text=self.p.t("web.lessons.not_found_text"))
        answers = await self._answers(who)
        t = self.p.t
        position = self.d.lessons.position(lesson.id)
        cards = [(card_text(t, lesson, n, position=position), card.sources) for n, card in enumerate(lesson.cards)]
        return self.p.render(
            "lesson.html", viewer=who, lesson=lesson, position=position, cards=cards, day=local_date,
            competence=t(COMPETENCE_TEXT[lesson.competence]), scope=self._scope(who),
            intro=t("quiz.intro", count=len(lesson.quiz.questions), pass_mark=lesson.quiz.pass_mark),
            questions=self._questions(lesson, answers),
            title=t("web.lessons.title_lesson", number=position, title=lesson.title))

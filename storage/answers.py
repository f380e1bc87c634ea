"""How residents answered the quizzes, per question and option: the web dashboard's lesson
pages (which wrong answer is chosen most). One aggregate over ``quiz_answer``, scoped by ward
or by group — never a list of people's ids. Nothing here commits.

Every answer counts: a resident who retook a quiz answered its questions again, and each
attempt shows how the question reads to people. Answers are counted under the question id of
the lesson file and the option's place (0-based), whatever version of the lesson they were
given on: an author who rewrites a question gives it a new id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Person, QuizAnswer, ResidentGroup


@dataclass
class QuestionAnswers:
    """The answers given to one question of one lesson."""

    lesson_id: str
    question_id: str
    chosen: dict[int, int] = field(default_factory=dict)  # option (0-based) → answers choosing it
    right: int = 0  # answers that were right

    @property
    def answered(self) -> int:
        return sum(self.chosen.values())

    @property
    def share_right(self) -> float | None:
        """Right answers in percent of all answers; None while nobody answered."""
        return 100.0 * self.right / self.answered if self.answered else None

    def most_chosen_wrong(self, answer: int) -> tuple[int, int] | None:
        """(option, answers) of the wrong option chosen most (``answer``: the right option,
        0-based); on a tie the first in the list; None if no wrong answer was given."""
        wrong = [(count, -option) for option, count in self.chosen.items() if option != answer and count]
        if not wrong:
            return None
        count, option = max(wrong)
        return -option, count


async def answer_counts(
    session: AsyncSession, *, ward_ids: Sequence[int] = (), group_ids: Sequence[int] = (),
) -> dict[tuple[str, str], QuestionAnswers]:
    """(lesson id, question id) → the answers of the residents who are now in one of
    ``ward_ids``' groups or in one of ``group_ids`` (a leader: their groups; an admin: the
    ward), in one statement grouped by lesson, question and option."""
    if not ward_ids and not group_ids:
        return {}
    scope = []
    if ward_ids:
        scope.append(col(ResidentGroup.ward_id).in_(list(ward_ids)))
    if group_ids:
        scope.append(col(ResidentGroup.id).in_(list(group_ids)))
    rows = await session.exec(
        select(QuizAnswer.lesson_id, QuizAnswer.question_id, QuizAnswer.choice,
               func.count().label("answers"),
               func.sum(case((col(QuizAnswer.correct), 1), else_=0)).label("right"))
        .join(Person, col(Person.id) == col(QuizAnswer.person_id))
        .join(ResidentGroup, col(ResidentGroup.id) == col(Person.group_id))
        .where(or_(*scope))
        .group_by(QuizAnswer.lesson_id, QuizAnswer.question_id, QuizAnswer.choice)
    )
    found: dict[tuple[str, str], QuestionAnswers] = {}
    for lesson_id, question_id, choice, answers, right in rows.all():
        entry = found.setdefault((lesson_id, question_id), QuestionAnswers(lesson_id, question_id))
        entry.chosen[int(choice)] = int(answers)
        entry.right += int(right or 0)
    return found

"""What a leader is shown about a group, shared by the chat (``handlers.leader``) and the
weekly digest (``bot.digest``) so both say the same: who is behind, and the summary lines."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.i18n import Translate
from bot.core.text import progress_bar
from storage.stats import GroupStats, MemberProgress

BEHIND_AFTER = timedelta(days=3)  # no activity for this long, programme not finished: behind


def is_behind(member: MemberProgress, *, total: int, now: datetime) -> bool:
    """Has not completed every lesson and has not been active for ``BEHIND_AFTER``."""
    return member.completed < total and (member.last_active_at is None or now - member.last_active_at >= BEHIND_AFTER)


def summary_lines(t: Translate, stats: GroupStats, *, lessons: int) -> list[str]:
    """Members, who started and finished, and the completion rate against the target."""
    mark = t("leader.target_met") if stats.meets_target else t("leader.target_not_met")
    return [
        t("leader.members_line", members=stats.members, started=stats.started, finished=stats.finished,
          lessons=lessons),
        t("leader.rate_line", bar=progress_bar(stats.finished, stats.members), rate=f"{stats.rate:.0f}",
          target=stats.target_percent, mark=mark, change=f"{stats.change:+.0f}"),
    ]

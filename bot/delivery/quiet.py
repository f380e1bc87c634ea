"""Quiet hours: the local hours in which nothing is sent unasked (default 21:00–07:00).

They apply when a message is *sent*, never when it is planned: producers set an outbox
row's ``due_at`` to the intended time and the sender does not claim rows inside the window.
Whoever tells a person when a message will arrive uses :meth:`QuietHours.expected`, so the
command line, the chat and the delivery report name the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    zone: ZoneInfo
    start: time
    end: time

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start == self.end:
            return False  # "21:00-21:00": no quiet hours
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window crosses midnight

    def next_allowed(self, moment: datetime) -> datetime:
        """``moment`` itself if sending is allowed then, else the end of the quiet window."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.zone)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)

    def expected(self, due_at: datetime, *, now: datetime) -> datetime:
        """When a message due at ``due_at`` is expected to go out, seen at ``now``: the first
        moment outside the quiet hours that is neither before it is due nor in the past."""
        return self.next_allowed(max(due_at, now))

"""Quiet hours: the local hours in which nothing is sent unasked (default 21:00–07:00).

They apply when a message is *sent*, never when it is planned: producers set an outbox
row's ``due_at`` to the intended time and the sender does not claim rows inside the window.
Whoever tells a person when a message will arrive uses :meth:`QuietHours.expected`, so the
command line, the chat and the delivery report name the same time; how long sending lasts once
the quiet hours interrupt it, :meth:`QuietHours.run`.
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

    def next_start(self, moment: datetime) -> datetime | None:
        """The first moment after ``moment`` at which the quiet hours begin (None: there are none)."""
        if self.start == self.end:
            return None
        local = moment.astimezone(self.zone)
        begin = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        if begin <= local:
            begin += timedelta(days=1)
        return begin.astimezone(UTC)

    def run(self, start: datetime, duration: timedelta) -> Run:
        """Sending that takes ``duration`` and may begin at ``start``: when it really begins
        (:meth:`next_allowed`), when the quiet hours first stop it and it resumes (if they do),
        and when it ends — the sender holds everything during the quiet hours."""
        at = begins = self.next_allowed(start)
        left, stopped, resumed = duration, None, None
        while (stop := self.next_start(at)) is not None and at + left > stop:
            left -= stop - at
            at = self.next_allowed(stop)
            if stopped is None:
                stopped, resumed = stop, at
        return Run(begins, at + left, stopped, resumed)


@dataclass(frozen=True)
class Run:
    """:meth:`QuietHours.run`: when sending begins and ends, and where the quiet hours first
    interrupt it (None, None when they do not)."""

    begins: datetime
    ends: datetime
    stopped: datetime | None = None
    resumed: datetime | None = None

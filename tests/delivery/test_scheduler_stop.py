"""A stopping worker lets a scheduled job that is running end (a reminder wave in the middle of
its batches) and starts no new one; a job that would not end is stopped after the timeout."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.scheduling import JobsInFlight, stop_scheduler

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def now():  # type: ignore[no-untyped-def]
    """Due at once on APScheduler's own clock, as bot.scheduling's first tick is."""
    return DateTrigger(timezone=ZONE).run_date


async def test_a_running_job_ends_before_the_scheduler_stops() -> None:
    started, release, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()
    runs = []

    async def wave() -> None:
        runs.append(1)
        started.set()
        await release.wait()
        ended.set()

    scheduler = AsyncIOScheduler(timezone=ZONE)
    jobs = JobsInFlight(scheduler)
    scheduler.add_job(wave, "interval", seconds=3600, next_run_time=now())
    scheduler.start()
    await asyncio.wait_for(started.wait(), 10)
    assert jobs.running == 1
    stopping = asyncio.create_task(stop_scheduler(scheduler, jobs, timeout=30))
    await asyncio.sleep(0)  # the stop has begun: paused, waiting for the job
    assert not stopping.done() and not ended.is_set()
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert ended.is_set() and jobs.running == 0 and not scheduler.running and runs == [1]


async def test_a_job_that_does_not_end_is_stopped_after_the_timeout() -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.Event().wait()

    scheduler = AsyncIOScheduler(timezone=ZONE)
    jobs = JobsInFlight(scheduler)
    scheduler.add_job(stuck, "interval", seconds=3600, next_run_time=now())
    scheduler.start()
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(stop_scheduler(scheduler, jobs, timeout=0.05), 10)
    assert not scheduler.running

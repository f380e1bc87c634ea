"""The real ``hocvuso`` command in a process of its own, on a clock the test chooses.

A test that needs a real process (a signal, SIGKILL, piped stdin) starts
``python -m tests.clocked <ISO time> <hocvuso arguments…>`` (:func:`command`): the same ``cli``
that ``bot.__main__.main()`` runs, given a ``tests.support.RunningClock`` (it starts at the given
time and moves on with ``time.monotonic()``: leases expire and pauses end as in production)
instead of the SystemClock, so the process reads the wall clock no more than the tests do.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(at: datetime, *args: str) -> list[str]:
    """The argv of ``hocvuso <args>`` on a clock starting at ``at`` (an aware datetime)."""
    return [sys.executable, "-m", "tests.clocked", at.isoformat(), *args]


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def finish(argv: list[str], *, stdin: str = "", cwd: Path, env: dict[str, str], timeout: float = 120) -> Finished:
    """Run ``argv`` to the end with ``stdin`` piped in (killed after ``timeout`` seconds).
    Unlike ``subprocess.run(timeout=…)``, waiting never calls ``time.sleep``, which fails under
    libfaketime with FAKETIME_DONT_FAKE_MONOTONIC (wolfcw/libfaketime#426; see .ci/run)."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


def environment(**values: str) -> dict[str, str]:
    """This process's environment with ``values``, and the repository importable (the child
    imports ``tests.clocked`` from any working directory)."""
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, **values, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


if __name__ == "__main__":
    from bot.cli import Deps, cli
    from tests.support import RunningClock

    cli(sys.argv[2:], obj=Deps(clock=RunningClock(datetime.fromisoformat(sys.argv[1]))), prog_name="hocvuso")

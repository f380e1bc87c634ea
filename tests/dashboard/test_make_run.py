"""``make run`` without a channel token: the terminal chat, and beside it the dashboard on
http://127.0.0.1:WEB_PORT (the real ``hocvuso run`` in its own process, tests.clocked)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.clocked import command, environment
from tests.conftest import START
from tests.support import free_port


async def test_run_serves_the_dashboard_on_the_loopback_beside_the_terminal_chat(tmp_path: Path) -> None:
    port = free_port()
    env = environment(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'run.db'}", WEB_PORT=str(port))
    for name in ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "PUBLIC_BASE_URL", "ACCOUNTS_FILE"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        *command(START, "run"), cwd=tmp_path, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        seen = ""
        while "dữ liệu mẫu" not in seen:  # the chat's first question: the dashboard started before it
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, seen
            seen += line.decode()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/web/") as response:
                assert response.status == 401 and "gửi /web" in await response.text()
            async with http.get(f"http://127.0.0.1:{port}/web/vao/{'x' * 43}") as response:
                assert response.status == 410
        process.stdin.write("k\n".encode())
        process.stdin.close()
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

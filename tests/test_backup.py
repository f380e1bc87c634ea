"""``hocvuso db backup`` and ``db restore`` on SQLite (issue 12 §4): a consistent copy taken while
the database is open, restored only when no bot holds the worker lock, the replaced file kept;
a copy is never written over an existing file and a file that is not one of our databases is
refused. (PostgreSQL: pg_dump / pg_restore, docs/operations.md; the command says so.)"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.leadership import FileLock
from storage.migrate import head_revision, upgrade
from tests.clocked import command, environment, finish
from tests.conftest import START


def _names(database: Path) -> list[str]:
    connection = sqlite3.connect(database)
    try:
        return [row[0] for row in connection.execute("SELECT code FROM ward ORDER BY code")]
    finally:
        connection.close()


async def test_backup_then_restore_a_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "data" / "hocvuso.db"
    database.parent.mkdir()
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(upgrade, url)
    connection = sqlite3.connect(database)
    connection.execute("INSERT INTO ward (code, name) VALUES ('HADONG', 'Phường Hà Đông')")
    connection.commit()
    env = environment(DATABASE_URL=url)

    async def hocvuso(*args: str):  # type: ignore[no-untyped-def]
        return await finish(command(START, "db", *args), cwd=tmp_path, env=env)

    target = tmp_path / "backups" / "hocvuso-2026-12-02.db"
    made = await hocvuso("backup", str(target))  # taken while this connection holds the file open
    assert made.returncode == 0, made.stderr
    assert f"phiên bản cấu trúc {head_revision()}" in made.stdout and _names(target) == ["HADONG"]
    again = await hocvuso("backup", str(target))
    assert again.returncode != 0 and "exists already" in again.stderr  # never written over

    connection.execute("DELETE FROM ward")
    connection.commit()
    connection.close()
    running = FileLock(database.with_name(database.name + ".worker.lock"))
    await running.acquire()  # a bot process is running on the database
    try:
        refused = await hocvuso("restore", str(target))
    finally:
        await running.release()
    assert refused.returncode != 0 and "stop it first" in refused.stderr and _names(database) == []

    restored = await hocvuso("restore", str(target))
    assert restored.returncode == 0, restored.stderr
    assert _names(database) == ["HADONG"]
    assert _names(database.with_name("hocvuso.db.before-restore")) == []  # the replaced file is kept

    junk = tmp_path / "notes.txt"
    junk.write_text("không phải cơ sở dữ liệu", encoding="utf-8")
    wrong = await hocvuso("restore", str(junk))
    assert wrong.returncode != 0 and "not a database of this bot" in wrong.stderr
    assert _names(database) == ["HADONG"]


async def test_postgresql_is_pointed_at_its_own_tools(tmp_path: Path) -> None:
    env = environment(DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    told = await finish(command(START, "db", "backup", str(tmp_path / "x.db")), cwd=tmp_path, env=env)
    assert told.returncode != 0 and "pg_dump" in told.stderr and not (tmp_path / "x.db").exists()

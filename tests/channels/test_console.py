"""The same journey through the terminal chat, driven by piped stdin like a script: the real
command in a process of its own, on a clock starting at START (tests.clocked)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.curriculum import LessonLibrary
from tests.clocked import Finished, command, environment, finish
from tests.conftest import START


async def _hocvuso(tmp_path: Path, database: str, args: list[str], lines: list[str]) -> Finished:
    env = environment(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / database}")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return await finish(command(START, *args), stdin="\n".join(lines) + "\n", cwd=tmp_path, env=env)


async def _run_chat(tmp_path: Path, lines: list[str]) -> Finished:
    return await _hocvuso(tmp_path, "chat.db", ["chat"], lines)


async def test_a_resident_learns_a_lesson_in_the_terminal_with_piped_input(tmp_path: Path, library: LessonLibrary) -> None:
    lesson = library.first
    lines = ["c", "1", "Bà Tư", "3", "1", "1"]  # demo data, consent, name, tổ 3 searched, Đúng rồi, Học tiếp
    lines += ["tiếp"] * (len(lesson.cards) - 1)  # Tiếp ▶ through the cards, by its word
    lines += ["lam bai kiem tra"]  # Làm bài kiểm tra, typed without diacritics
    lines += ["ABC"[q.answer_index] for q in lesson.quiz.questions]  # answers are lettered
    lines += ["/tiendo"]
    result = await _run_chat(tmp_path, lines)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Đã nạp dữ liệu mẫu: 10 tổ dân phố." in out
    assert "1. ✅ Đồng ý\n2. Không đồng ý\n\n(Gõ 1 hoặc 2 rồi gửi.)" in out
    assert "Cảm ơn Bà Tư đã tham gia Tổ dân phố 3, Phường Mẫu!" in out
    assert out.count("✅ Đúng rồi!") == 3 and "hoàn thành bài" in out
    assert f"▓░░░░░░░░░ 1/{len(library)}" in out
    assert out.rstrip().endswith("Tạm biệt! Tiến độ học của bạn đã được lưu.")

    db = sqlite3.connect(tmp_path / "chat.db")
    rows = db.execute(
        "SELECT p.display_name, g.code, lp.lesson_id, lp.status, lp.score, lp.attempts, lp.lesson_version "
        "FROM lesson_progress lp JOIN person p ON p.id = lp.person_id JOIN resident_group g ON g.id = p.group_id"
    ).fetchall()
    assert rows == [("Bà Tư", "DEMO-TDP03", lesson.id, "completed", 3, 1, lesson.version)]
    assert db.execute("SELECT channel, external_id FROM identity").fetchall() == [("console", "terminal")]


async def test_declining_the_demo_and_ending_input_at_once(tmp_path: Path) -> None:
    result = await _run_chat(tmp_path, ["k"])
    assert result.returncode == 0, result.stderr
    assert "Không nạp dữ liệu mẫu" in result.stdout and "hocvuso groups import" in result.stdout
    assert "Bạn có đồng ý không?" in result.stdout


async def test_run_without_a_token_opens_the_terminal_chat_saying_so_in_one_line(tmp_path: Path) -> None:
    result = await _hocvuso(tmp_path, "run.db", ["run"], ["k"])
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("Chưa đặt TELEGRAM_BOT_TOKEN: mở trò chuyện trong cửa sổ dòng lệnh")
    assert "Bạn có đồng ý không?" in result.stdout
    assert (tmp_path / "run.db").exists()  # migrated on start

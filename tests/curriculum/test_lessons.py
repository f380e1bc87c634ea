"""The lesson library: the shipped lessons are valid, every rule of the validator catches
its broken fixture naming file and field, the glossary and sentence-length checks span the
course, and every lesson can be learnt end to end."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import App
from bot.cli import cli
from bot.core.messages import Image, Menu, Text
from bot.core.render import numbered_menu
from bot.curriculum import (
    GLOSSARY_FILE,
    Competence,
    LessonLibrary,
    check_directory,
    default_lessons_dir,
    inspect_directory,
    parse_glossary,
)
from bot.curriculum.glossary import fold
from bot.curriculum.schema import CARD_MAX, SENTENCE_WORDS_MAX, sentences, word_count
from storage.models import LessonProgress, ProgressStatus
from tests.support import NUMBERED, Chat, join, pass_lesson

BROKEN = Path(__file__).parent / "broken"
TELEGRAM_TEXT, ZALO_TEXT, CALLBACK_BYTES = 4096, 2000, 64

# One fixture per rule: (field named in the error, words of the message).
RULES = {
    "broken-yaml": ("dòng", "YAML không đọc được"),
    "not-a-mapping": ("(cả tệp)", "tệp phải là một bài học"),
    "missing-title": ("title", "thiếu trường bắt buộc"),
    "unknown-field": ("titel", "không có trong định dạng"),
    "wrong-schema": ("schema", "phiên bản định dạng"),
    "version-zero": ("version", "lớn hơn hoặc bằng 1"),
    "title-too-long": ("title", "dài quá 80 ký tự"),
    "bad-competence": ("competence", "phải là một trong"),
    "too-few-cards": ("cards", "cần từ 3 đến 6 thẻ"),
    "too-many-cards": ("cards", "cần từ 3 đến 6 thẻ"),
    "card-too-long": ("cards[1].text", f"dài quá {CARD_MAX} ký tự"),
    "two-questions": ("quiz.questions", "cần đúng 3 câu hỏi"),
    "four-options": ("quiz.questions[0].options", "cần đúng 3 lựa chọn"),
    "answer-out-of-range": ("quiz.questions[1].answer", "đáp án phải là số từ 1 đến 3"),
    "duplicate-options": ("quiz.questions[2].options[1]", "lựa chọn bị trùng"),
    "missing-explanation": ("quiz.questions[0].explanation", "thiếu trường bắt buộc"),
    "explanation-too-long": ("quiz.questions[0].explanation", "dài quá 200 ký tự"),
    "option-too-long": ("quiz.questions[0].options[0]", "dài quá 100 ký tự"),
    "duplicate-question-id": ("quiz.questions[1].id", "bị trùng"),
    "pass-mark-too-high": ("quiz.pass_mark", "điểm đạt phải từ 1 đến 3"),
    "http-link": ("links[0].url", "https://"),
    "no-sources": ("sources", "phải liệt kê nguồn"),
    "unknown-source": ("cards[0].sources", "nguồn 'Z9' không có"),
    "no-diacritics": ("cards[0].text", "tiếng Việt có dấu"),
    "bad-id": ("id", "sai dạng"),
    "id-too-long": ("id", "dài quá 32 ký tự"),
    "file-name-differs": ("id", "tên tệp phải là another-id.yaml"),
    "reviewed-before-source": ("reviewed", "2025-12 sớm hơn ngày của nguồn mới nhất trong bài "
                                           "(F3: 2026-02-15)"),
    "bad-reviewed-date": ("reviewed", "không phải ngày dạng YYYY-MM hoặc YYYY-MM-DD"),
    "bad-source-date": ("sources[0].date", "không phải ngày dạng YYYY-MM-DD"),
    "bad-published-date": ("published", "'2027-03' không phải ngày dạng YYYY-MM-DD"),
}

# Rules across several files, one folder each: (exit code, lines expected at the start of the output).
FOLDERS = {
    "glossary-unexplained": (1, [
        'a01-mo-dau.yaml: cards[1].text: thuật ngữ "OTP" (glossary.yaml) được dùng lần đầu trong khóa học '
        "ở thẻ này của bài a01-mo-dau nhưng chưa được giải thích",
        'a02-tiep-theo.yaml: quiz.questions[0].text: thuật ngữ "ví điện tử" (glossary.yaml) được dùng '
        "lần đầu trong khóa học ở câu hỏi này của bài a02-tiep-theo, nhưng chưa thẻ nào của bài giải thích",
    ]),
    "long-sentence": (0, [
        f"long-sentence.yaml: cards[0].text: cảnh báo: câu dài 42 từ (nên tối đa {SENTENCE_WORDS_MAX})",
    ]),
}
# The terms the course must explain where a learner first meets them (issue 10, §6).
REQUIRED_TERMS = {"OTP", "VietQR", "NAPAS", "ví điện tử", "sinh trắc học", "VssID", "ANTT", "DNC"}


def test_every_rule_has_a_broken_fixture() -> None:
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_check_fails_on_each_broken_lesson_naming_file_and_field(tmp_path: Path, name: str) -> None:
    shutil.copy(BROKEN / f"{name}.yaml", tmp_path)
    result = CliRunner().invoke(cli, ["lessons", "check", str(tmp_path)])
    assert result.exit_code == 1
    field, words = RULES[name]
    expected_prefix = f"{name}.yaml: {field}"
    lines = [line for line in result.output.splitlines() if line.startswith(expected_prefix)]
    assert lines and any(words in line for line in lines), result.output


def test_every_folder_of_broken_lessons_has_its_expectation() -> None:
    assert sorted(p.name for p in BROKEN.iterdir() if p.is_dir()) == sorted(FOLDERS)


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_the_check_on_each_folder_names_file_field_and_problem(tmp_path: Path, name: str) -> None:
    folder = tmp_path / name
    shutil.copytree(BROKEN / name, folder)
    result = CliRunner().invoke(cli, ["lessons", "check", str(folder)])
    code, expected = FOLDERS[name]
    assert result.exit_code == code, result.output
    lines = result.output.splitlines()
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, result.output)
    problems = [line for line in lines if ".yaml: " in line]
    assert len(problems) == len(expected), result.output


def test_the_check_passes_on_the_shipped_lessons() -> None:
    result = CliRunner().invoke(cli, ["lessons", "check"])
    assert result.exit_code == 0, result.output
    assert "Tất cả 13 bài học" in result.output
    assert "cảnh báo" not in result.output, result.output


def test_the_shipped_lessons_explain_every_glossary_term_and_no_sentence_is_too_long() -> None:
    report = inspect_directory(default_lessons_dir())
    assert (report.errors, report.warnings) == ([], [])
    glossary, errors = parse_glossary((default_lessons_dir() / GLOSSARY_FILE).read_text(encoding="utf-8"))
    assert errors == [] and glossary is not None
    assert REQUIRED_TERMS <= {term.term for term in glossary.terms}


def test_each_shipped_lesson_was_reviewed_on_the_date_of_its_newest_source(library: LessonLibrary) -> None:
    for lesson in library:
        dated = [s.date for s in lesson.sources if s.date]
        assert lesson.reviewed and dated, lesson.id
        assert lesson.reviewed == max(dated), lesson.id


def _course(tmp_path: Path, a01_card: str | None = None, a02_first_question: str | None = None) -> Path:
    """The glossary fixture, with a01's second card or a02's first question rewritten."""
    folder = tmp_path / "course"
    shutil.copytree(BROKEN / "glossary-unexplained", folder)
    for name, old, new in [
        ("a01-mo-dau.yaml", "Không bao giờ đọc mã OTP cho người lạ qua điện thoại.", a01_card),
        ("a02-tiep-theo.yaml", "Muốn mở ví điện tử, bạn làm ở đâu?", a02_first_question),
    ]:
        if new is not None:
            path = folder / name
            path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    return folder


NO_TERM = "Muốn trả tiền trên điện thoại, bạn làm ở đâu?"  # a02's first question without "ví điện tử"


def _glossary_errors(folder: Path) -> list[str]:
    return [str(e) for e in check_directory(folder)[1]]


@pytest.mark.parametrize("card", [
    "Không bao giờ đọc mã OTP (mã số dùng một lần) cho người lạ.",  # a parenthesis right after the term
    'Không đọc "mã OTP" (mã số dùng một lần) cho người lạ.',  # after a closing quote
    "Mã OTP là mã số dùng một lần. Không đọc mã này cho người lạ.",  # a definition in the same card
    "Không đọc mã số trong tin nhắn cho người lạ.",  # the term is not used here at all: a02 explains it
])
def test_a_term_explained_where_first_used_passes(tmp_path: Path, card: str) -> None:
    folder = _course(tmp_path, a01_card=card, a02_first_question=NO_TERM)
    assert _glossary_errors(folder) == []


@pytest.mark.parametrize("card", [
    "Không bao giờ đọc mã OTP (44) cho người lạ.",  # a bracket of one word explains nothing
    "Không đọc mã otp cho người lạ. Mã OTP (mã số dùng một lần) là của bạn.",  # explained too late
    "Không đọc Mã Otp cho người lạ.",  # case does not hide a use
])
def test_a_term_not_explained_where_first_used_is_reported(tmp_path: Path, card: str) -> None:
    folder = _course(tmp_path, a01_card=card, a02_first_question=NO_TERM)
    [error] = _glossary_errors(folder)
    assert error.startswith('a01-mo-dau.yaml: cards[1].text: thuật ngữ "OTP"'), error


def test_glossary_matching_ignores_case_and_diacritics_but_not_word_boundaries(tmp_path: Path) -> None:
    assert _glossary_errors(_course(tmp_path / "a", a02_first_question="Muốn mở VI DIEN TU, bạn làm ở đâu?"))
    assert _glossary_errors(_course(tmp_path / "b", a01_card="Mật khẩu OTPX và SMSOTP không phải là từ đó.",
                                    a02_first_question=NO_TERM)) == []
    assert fold("Ví Điện Tử") == "vi dien tu" and len(fold("Đặng Thị Ánh")) == len("Đặng Thị Ánh")


def test_the_glossary_file_is_checked_and_is_not_a_lesson(tmp_path: Path) -> None:
    folder = _course(tmp_path, a01_card="Không đọc mã số trong tin nhắn cho người lạ.",
                     a02_first_question=NO_TERM)
    lessons, errors = check_directory(folder)
    assert [lesson.id for lesson in lessons] == ["a01-mo-dau", "a02-tiep-theo"] and errors == []
    glossary = folder / GLOSSARY_FILE
    duplicate = '  - term: "otp"\n    meaning: "Trùng với OTP."\n'
    glossary.write_text(glossary.read_text(encoding="utf-8") + duplicate, encoding="utf-8")
    assert _glossary_errors(folder) == ["glossary.yaml: terms[2]: cách viết 'otp' đã có ở thuật ngữ 'OTP'"]
    glossary.write_text("schema: 1\nterms:\n  - term: OTP\n    meaning: [\n", encoding="utf-8")
    [error] = _glossary_errors(folder)
    assert error.startswith("glossary.yaml: dòng") and "YAML không đọc được" in error


def test_without_a_glossary_file_no_term_is_required(tmp_path: Path) -> None:
    folder = _course(tmp_path)
    (folder / GLOSSARY_FILE).unlink()
    assert _glossary_errors(folder) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("Trả 22.000 đồng trên dichvucong.gov.vn từ 1/7/2025. Xong.",
     ["Trả 22.000 đồng trên dichvucong.gov.vn từ 1/7/2025.", "Xong."]),
    ('Bấm "Gửi." rồi chờ! Có sao không? Không…\n1. Mở ứng dụng',
     ['Bấm "Gửi.', "rồi chờ!", "Có sao không?", "Không…", "1.", "Mở ứng dụng"]),
])
def test_sentences_end_at_stops_and_line_breaks_not_in_numbers(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_a_sentence_over_the_limit_warns_and_one_at_the_limit_does_not(tmp_path: Path) -> None:
    assert word_count("🔒 Một, hai (ba) – bốn 5 ...") == 5  # emoji and lone punctuation are not words
    folder = tmp_path / "course"
    shutil.copytree(BROKEN / "long-sentence", folder)
    path = folder / "long-sentence.yaml"
    original = path.read_text(encoding="utf-8")
    long_one = original.splitlines()[10].strip()  # the first card's one sentence of 42 words
    assert word_count(long_one) == 42
    for words, warned in ((SENTENCE_WORDS_MAX, False), (SENTENCE_WORDS_MAX + 1, True)):
        sentence = " ".join(["chữ"] * (words - 1)) + " cuối."
        path.write_text(original.replace(long_one, sentence), encoding="utf-8")
        report = inspect_directory(folder)
        assert report.errors == []
        expected = (f"long-sentence.yaml: cards[0].text: cảnh báo: câu dài {words} từ "
                    f"(nên tối đa {SENTENCE_WORDS_MAX}), hãy tách thành câu ngắn hơn: “{'chữ ' * 8}…”")
        assert [str(w) for w in report.warnings] == ([expected] if warned else [])


def test_rules_across_files_duplicate_id_and_order(tmp_path: Path) -> None:
    source = default_lessons_dir() / "b01-binh-dan-hoc-vu-so.yaml"
    shutil.copy(source, tmp_path / source.name)
    (tmp_path / "copy.yaml").write_text(source.read_text(encoding="utf-8").replace(
        "id: b01-binh-dan-hoc-vu-so", "id: copy"), encoding="utf-8")
    _, errors = check_directory(tmp_path)
    assert [str(e) for e in errors] == ["copy.yaml: order: thứ tự 10 trùng với b01-binh-dan-hoc-vu-so.yaml"]


def test_the_library_is_ordered_tagged_and_sourced(library: LessonLibrary) -> None:
    lessons = list(library)
    assert len(lessons) == 13
    assert library.first.id == "b01-binh-dan-hoc-vu-so"
    assert [lesson.order for lesson in lessons] == sorted(lesson.order for lesson in lessons)
    assert {lesson.competence for lesson in lessons} <= set(Competence)
    for lesson in lessons:
        assert 3 <= len(lesson.cards) <= 6 and len(lesson.quiz.questions) == 3
        assert lesson.quiz.pass_mark == 2
        cited = {ref for card in lesson.cards for ref in card.sources} | {
            ref for q in lesson.quiz.questions for ref in q.sources
        }
        assert cited and cited <= {s.id for s in lesson.sources}, lesson.id
        assert all(link.url.startswith("https://") for link in lesson.links)


def test_no_lesson_presents_the_replaced_decree_as_current(library: LessonLibrary) -> None:
    for lesson in library:
        for card in lesson.cards:
            if "13/2023" in card.text:
                assert "356" in card.text, f"{lesson.id}: NĐ 13/2023 mentioned without its replacement"


async def test_every_lesson_renders_within_the_channel_limits(ward: App) -> None:
    """Each card and question as the handlers render them, on buttons and numbered channels."""
    for capabilities, limit in ((None, TELEGRAM_TEXT), (NUMBERED, ZALO_TEXT)):
        chat = Chat(ward.conversation, user=f"limits-{limit}", **({"capabilities": capabilities} if capabilities else {}))
        await join(chat)
        for lesson in ward.lessons:
            for question in lesson.quiz.questions:
                assert all(len(o) <= 100 for o in question.options)
            await pass_lesson(chat, lesson)
        for reply in chat.history:
            if isinstance(reply, Image):  # the certificate after the last lesson
                assert len(reply.caption) <= 1024  # Telegram's caption limit
                continue
            assert isinstance(reply, Text | Menu)
            shown = numbered_menu(reply, ward.catalog.translator(None)) if isinstance(reply, Menu) and capabilities else reply.text
            assert len(shown) <= limit, shown[:80]
            if isinstance(reply, Menu):
                assert all(len(o.action.encode("utf-8")) <= CALLBACK_BYTES for o in reply.options)


async def test_every_lesson_end_to_end_all_right_completes_all_wrong_offers_retry(ward: App) -> None:
    right = Chat(ward.conversation, user="right")
    wrong = Chat(ward.conversation, user="wrong")
    await join(right)
    await join(wrong)
    for lesson in ward.lessons:
        replies = await pass_lesson(right, lesson)
        assert "hoàn thành" in replies[-1].text and f"{len(lesson.quiz.questions)}/{len(lesson.quiz.questions)}" in replies[-1].text
        for card in lesson.cards:
            assert any(card.text in r.text for r in right.history if isinstance(r, Menu))
        replies = await pass_lesson(wrong, lesson, correct=0)
        assert isinstance(replies[-1], Menu)
        assert [o.action for o in replies[-1].options][:2] == [f"quiz:{lesson.id}", f"lesson:{lesson.id}:0"]
    async with ward.sessions() as session:
        rows = (await session.exec(select(LessonProgress))).all()
    by_status = {(r.status, r.person_id) for r in rows}
    assert len([r for r in rows if r.status == ProgressStatus.COMPLETED]) == 13
    assert len([r for r in rows if r.status == ProgressStatus.IN_PROGRESS]) == 13
    assert len(by_status) == 2
    await right.send("/tiendo")
    assert "▓▓▓▓▓▓▓▓▓▓ 13/13" in right.last_text
    await right.press("Về menu")
    await right.press("Học tiếp")
    assert "hoàn thành cả 13 bài học" in right.last_text


async def test_a_completion_on_an_older_version_stays_counted_and_shows_it(ward: App, library: LessonLibrary) -> None:
    chat = Chat(ward.conversation)
    await join(chat)
    lesson = library.first
    await pass_lesson(chat, lesson)
    newer = lesson.model_copy(update={"version": lesson.version + 1})  # the officer bumped the version
    services = ward.conversation.services
    ward.conversation.services = replace(
        services, lessons=LessonLibrary([newer if item.id == lesson.id else item for item in library])
    )
    await chat.send("/tiendo")
    assert "1/13" in chat.last_text and f"[hoàn thành ở phiên bản {lesson.version}]" in chat.last_text
    await pass_lesson(chat, newer, correct=0)  # failing the new text keeps the old completion
    async with ward.sessions() as session:
        [row] = (await session.exec(select(LessonProgress))).all()
    assert (row.status, row.lesson_version, row.score) == (ProgressStatus.COMPLETED, lesson.version, 3)
    await pass_lesson(chat, newer)
    async with ward.sessions() as session:
        [row] = (await session.exec(select(LessonProgress))).all()
    assert (row.status, row.lesson_version) == (ProgressStatus.COMPLETED, newer.version)

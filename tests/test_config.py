"""Settings: names stable for operators, wrong values fail at start in one line, tokens secret."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from bot.config import DEFAULT_DATABASE_URL, SecretFilter, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAF-secret-token-value"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "DATABASE_URL", "TIMEZONE", "LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults() -> None:
    settings = load_settings()
    assert settings.telegram_bot_token is None
    assert str(settings.telegram_api_url) == "https://api.telegram.org/"
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///data/hocvuso.db"
    assert settings.timezone == "Asia/Ho_Chi_Minh" and settings.log_level == "INFO"


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nTIMEZONE=Asia/Bangkok\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081")
    settings = load_settings()
    assert settings.telegram_bot_token is not None and settings.telegram_bot_token.get_secret_value() == TOKEN
    assert settings.timezone == "Asia/Bangkok" and settings.log_level == "DEBUG"
    assert str(settings.telegram_api_url).startswith("http://127.0.0.1:8081")
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TIMEZONE", "Mars/Olympus", "TIMEZONE"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN"),
        ("TELEGRAM_API_URL", "ftp:/nowhere", "TELEGRAM_API_URL"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces & symbols!", "TELEGRAM_WEBHOOK_SECRET"),
        ("TELEGRAM_WEBHOOK_SECRET", "x" * 257, "TELEGRAM_WEBHOOK_SECRET"),
    ],
)
def test_a_wrong_setting_fails_in_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert expected in message and "\n" not in message


async def test_the_command_fails_at_start_with_one_clear_line(tmp_path: Path) -> None:
    from tests.clocked import finish

    env = {"PATH": "/usr/bin:/bin", "TIMEZONE": "Nowhere/Town", "HOME": str(tmp_path)}
    out = await finish([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "TIMEZONE" in out.stderr and "Lỗi cấu hình" in out.stderr


def test_the_telegram_webhook_needs_its_secret_and_the_public_address(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_WEBHOOK_SECRET", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().telegram_webhook_url is None  # long polling
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "Abc_123-xyz")
    assert load_settings().telegram_webhook_url is None  # no address to give Telegram: still polling
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bot.phuong.example/")
    settings = load_settings()
    assert settings.telegram_webhook_url == "https://bot.phuong.example/webhooks/telegram"
    assert "Abc_123-xyz" in settings.secrets() and "Abc_123-xyz" not in repr(settings)  # scrubbed from logs


def test_json_logs_are_one_object_per_line_and_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    from bot.app import configure_logging

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    settings = load_settings()
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(settings)
        log = logging.getLogger("test.json")
        log.warning("gọi https://api.telegram.org/bot%s/getMe thất bại", TOKEN)
        try:
            raise RuntimeError(f"url /bot{TOKEN}/x")
        except RuntimeError:
            log.exception("lỗi")
    finally:
        root.handlers[:], root.level = handlers, level
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["level"], e["logger"]) for e in lines] == [("WARNING", "test.json"), ("ERROR", "test.json")]
    assert lines[0]["message"] == "gọi https://api.telegram.org/bot***/getMe thất bại"  # Vietnamese kept as text
    assert "RuntimeError" in lines[1]["exception"] and TOKEN not in stream.getvalue()
    assert lines[0]["time"].endswith("+00:00")


def test_blank_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "  ")
    assert load_settings().telegram_bot_token is None


def test_secret_filter_scrubs_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.secrets")
    caplog.handler.addFilter(SecretFilter([TOKEN]))
    with caplog.at_level(logging.INFO, logger="test.secrets"):
        logger.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise RuntimeError(f"failed https://api.telegram.org/bot{TOKEN}/sendMessage")
        except RuntimeError:
            logger.exception("request failed")
    assert TOKEN not in caplog.text and "bot***/getMe" in caplog.text and "bot***/sendMessage" in caplog.text


DATABASE_PASSWORD = "p@ss/w0rd-Sup3r"  # needs percent-encoding inside the URL


def test_the_database_password_is_a_secret(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql+asyncpg://hocvuso:p%40ss%2Fw0rd-Sup3r@db.internal:5432/hocvuso"
    monkeypatch.setenv("DATABASE_URL", url)
    settings = load_settings()
    assert settings.database_url_shown == "postgresql+asyncpg://hocvuso:***@db.internal:5432/hocvuso"
    assert DATABASE_PASSWORD in settings.secrets()
    logger = logging.getLogger("test.database")
    caplog.handler.addFilter(SecretFilter(settings.secrets()))
    with caplog.at_level(logging.INFO, logger="test.database"):
        logger.info("connecting to %s", settings.database_url)
        logger.info("password was %s", DATABASE_PASSWORD)
    assert DATABASE_PASSWORD not in caplog.text and "p%40ss%2Fw0rd-Sup3r" not in caplog.text
    assert "hocvuso:***@db.internal" in caplog.text


def test_a_database_url_without_a_password_is_shown_as_it_is() -> None:
    settings = load_settings()
    assert settings.database_url_shown == DEFAULT_DATABASE_URL
    assert settings.secrets() == []

"""Settings from the environment or a ``.env`` file.

The environment variable names are a contract with operators: keep them stable.
Tokens are :class:`~pydantic.SecretStr`, so they never appear in ``repr`` or logs; the
password inside ``DATABASE_URL`` is a secret too (scrubbed from logs, hidden when shown).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from urllib.parse import quote

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/hocvuso.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    telegram_bot_token: SecretStr | None = Field(default=None, description="Bot token from @BotFather")
    telegram_api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.telegram.org"),
        description="Bot API server base URL (official, or a local Bot API server)",
    )
    telegram_bot_username: str | None = Field(
        default=None, description="the bot's @username, for join links and QR codes (asked from getMe if empty)"
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="with PUBLIC_BASE_URL: receive by webhook (1-256 of A-Z a-z 0-9 _ -), checked on every call",
    )
    accounts_file: Path | None = Field(
        default=None, description="a TOML file of the city's channel accounts, one per ward bot (bot/accounts.py)")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, description="SQLAlchemy async URL")
    timezone: Annotated[str, NoDecode] = Field(default="Asia/Ho_Chi_Minh", description="IANA timezone")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line (time, level, logger, message, exception)")

    # Proactive delivery (outbox) and reminders.
    quiet_hours: Annotated[str, NoDecode] = Field(
        default="21:00-07:00", description="local hours when nothing is sent unasked (HH:MM-HH:MM)"
    )
    reminder_inactive_days: int = Field(default=2, ge=1, le=60)
    reminder_max_unanswered: int = Field(default=3, ge=1, le=10)
    telegram_rate: float = Field(default=28.0, gt=0, le=1000, description="messages/s across chats")
    telegram_chat_interval: float = Field(default=1.0, ge=0, le=60, description="seconds between two to one chat")
    outbox_lease_seconds: int = Field(default=60, ge=1, le=3600)
    sender_concurrency: int = Field(default=8, ge=1, le=256, description="requests in flight per sender")
    updates_in_flight: int = Field(
        default=16, ge=1, le=512,
        description="updates handled at once per process (each holds a database connection while in its transaction)",
    )
    outbox_retention_days: int = Field(
        default=30, ge=1, le=3650,
        description="days after which a finished outbox message is deleted (at least 8; broadcasts keep their counts)",
    )
    # Report-deadline reminders to ward admins (bot/deadlines.py).
    report_deadlines: Annotated[str, NoDecode] = Field(
        default="05/11=year,05/05=6m",
        description="when the ward's reports are due, DD/MM=year|6m, comma-separated",
    )
    report_remind_days: int = Field(default=7, ge=0, le=60, description="days before a report deadline to remind")

    # Zalo Bot Platform.
    zalo_bot_token: SecretStr | None = None
    zalo_api_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://bot-api.zaloplatforms.com"))
    zalo_webhook_secret: SecretStr | None = None
    zalo_rate: float = Field(default=5.0, gt=0, le=100, description="messages/s; Zalo publishes no limit")

    # Zalo Official Account (OA) Open API.
    zalo_oa_id: str | None = None
    zalo_oa_app_id: str | None = None
    zalo_oa_app_secret: SecretStr | None = None
    zalo_oa_secret_key: SecretStr | None = None
    zalo_oa_refresh_token: SecretStr | None = None
    zalo_oa_api_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://openapi.zalo.me"))
    zalo_oauth_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://oauth.zaloapp.com"))

    # Who signs the ward's report and award list (the signature block of the Word documents).
    report_signer_title: str = Field(default="CHỦ TỊCH", min_length=1, max_length=60,
                                     description="e.g. CHỦ TỊCH, PHÓ CHỦ TỊCH")
    report_signer_name: str = Field(default="", max_length=80, description="empty: a dotted line to write it")

    # The bot's own web endpoint (webhooks, images served for Zalo).
    public_base_url: AnyHttpUrl | None = None
    web_host: str = "0.0.0.0"
    web_port: int = Field(default=8080, ge=1, le=65535)
    web_trusted_proxies: Annotated[str, NoDecode] = Field(
        default="", description="the HTTPS proxies in front (addresses or networks, by commas): their "
                                "X-Forwarded-For names the client; empty: no forwarded header is trusted")

    @field_validator(
        "telegram_bot_token", "telegram_bot_username", "telegram_webhook_secret", "zalo_bot_token", "zalo_webhook_secret", "zalo_oa_id", "zalo_oa_app_id",
        "zalo_oa_app_secret", "zalo_oa_secret_key", "zalo_oa_refresh_token", "public_base_url", "accounts_file",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # `TELEGRAM_BOT_TOKEN=` in a .env file means "not set", not an invalid value.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @field_validator("report_deadlines")
    @classmethod
    def _report_deadlines(cls, value: str) -> str:
        from bot.deadlines import parse_deadlines

        parse_deadlines(value)
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            bot_id, _, secret = value.get_secret_value().partition(":")
            if not (bot_id.isdigit() and secret):
                raise ValueError("expected the form <bot id>:<secret> given by @BotFather")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # What Telegram accepts as setWebhook's secret_token.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("use 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @property
    def telegram_webhook_url(self) -> str | None:
        """Where Telegram posts updates: set when TELEGRAM_WEBHOOK_SECRET and PUBLIC_BASE_URL are."""
        if self.telegram_webhook_secret is None or self.public_base_url is None:
            return None
        return str(self.public_base_url).rstrip("/") + "/webhooks/telegram"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value

    @field_validator("web_trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        parse_proxies(value)  # ValueError names the entry that is not an address or a network
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def quiet(self) -> tuple[time, time]:
        return parse_quiet_hours(self.quiet_hours)

    @property
    def database_url_shown(self) -> str:
        """``DATABASE_URL`` as it may be printed or logged: the password replaced by ``***``."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    def secrets(self) -> list[str]:
        """Secret values to scrub from every log line: the tokens, and the database password
        (as typed and as it appears percent-encoded inside the URL)."""
        values = [getattr(self, name) for name, field in type(self).model_fields.items()
                  if field.annotation in (SecretStr, SecretStr | None)]
        found = [v.get_secret_value() for v in values if v is not None]
        password = make_url(self.database_url).password
        if password:
            found += list(dict.fromkeys([password, quote(password, safe="")]))
        return found


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(value: str) -> tuple[Network, ...]:
    """``WEB_TRUSTED_PROXIES``: addresses or networks, separated by commas (``10.0.0.2, 10.1.0.0/16``)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """``"21:00-07:00"`` → (21:00, 07:00); the window may cross midnight; equal ends = none."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-", 1))
    except ValueError:
        raise ValueError("expected HH:MM-HH:MM, e.g. 21:00-07:00") from None
    return start, end


class SettingsError(Exception):
    """A setting is missing or wrong; ``str()`` is one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise SettingsError(f"setting {name} is invalid: {message}{more}") from None


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors: ``time`` (UTC, ISO 8601), ``level``,
    ``logger``, ``message`` and, with a traceback, ``exception`` (already scrubbed of secrets
    by :class:`SecretFilter`, which runs first)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class SecretFilter(logging.Filter):
    """Replaces secret values in log records (tokens travel inside Bot API URLs)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if any(s in message for s in self._secrets):
            record.msg, record.args = self._scrub(message), None
        if record.exc_info and not record.exc_text:
            # Tracebacks may quote a request URL: format it here so handlers print our text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        return True

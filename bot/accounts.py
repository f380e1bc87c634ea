"""Channel accounts: a Telegram bot, a Zalo bot, a Zalo Official Account — each belongs to a ward.

An account's **key** is what the database stores as the channel of its identities, handled
events and outbox rows (``Identity.channel``, ``Outbox.channel``, ``HandledEvent.source``), so
two bots never see each other's residents, updates or messages: every sender claims its own
account's rows, every account has its own pacing, webhook path and join links.

Where accounts come from:
- the single-ward settings (``TELEGRAM_BOT_TOKEN``, ``ZALO_BOT_TOKEN``, ``ZALO_OA_ID`` …) are
  the accounts ``telegram``, ``zalo`` and ``zalo_oa``, serving every ward of the database —
  what one ward's deployment always had;
- ``ACCOUNTS_FILE``: a TOML file the city's operator writes, one ``[[accounts]]`` table per
  account, naming its ward. Tokens are never written in it: ``token_env`` names an environment
  variable, ``token_file`` a file (a Docker/Kubernetes secret) that holds it.

At start the accounts are registered in the ``channel_account`` table (key, kind, ward), so the
data says which ward each identity belongs to; :class:`AccountDirectory` is what handlers ask.

    [[accounts]]
    key = "hoa-cuong-tg"          # a-z 0-9 _ -, at most 16; stored with every identity
    kind = "telegram"             # telegram | zalo | zalo_oa
    ward = "HOA-CUONG"            # the ward's code (hocvuso groups import)
    token_file = "/run/secrets/hoa_cuong_tg"
    webhook_secret_env = "HOA_CUONG_TG_HOOK"   # optional; with PUBLIC_BASE_URL: webhook
    username = "hoacuong_bot"     # optional (asked from getMe)
    rate = 28                     # optional: messages/s of this account's outbox

    [[accounts]]
    key = "hoa-cuong-oa"
    kind = "zalo_oa"              # a Zalo Official Account: its ids, and secrets by _env or _file
    ward = "HOA-CUONG"
    oa_id = "1234567890"
    app_id = "9876543210"
    app_secret_env = "HOA_CUONG_OA_APP_SECRET"
    secret_key_env = "HOA_CUONG_OA_SECRET_KEY"     # signs the OA's webhook events
    refresh_token_file = "/run/secrets/hoa_cuong_oa_refresh"   # optional: the first refresh token
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from bot.config import Settings

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,15}$")  # stored as the channel (16 characters)
WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class AccountKind(StrEnum):
    TELEGRAM = "telegram"
    ZALO_BOT = "zalo"
    ZALO_OA = "zalo_oa"
    CONSOLE = "console"


# The keys of the accounts the single-ward settings configure (the channel names stored before
# accounts existed, so existing data belongs to them unchanged).
DEFAULT_KEYS = {AccountKind.TELEGRAM: "telegram", AccountKind.ZALO_BOT: "zalo", AccountKind.ZALO_OA: "zalo_oa"}


class AccountsError(ValueError):
    """The accounts file is wrong; ``str()`` is one line naming the account and the field."""


@dataclass(frozen=True)
class OACredentials:
    """What a Zalo Official Account needs: its ids, the app secret (token refresh), the OA secret
    key (webhook signatures) and, for the first start, a refresh token."""

    oa_id: str
    app_id: str
    app_secret: SecretStr
    secret_key: SecretStr
    refresh_token: SecretStr | None = None
    oauth_url: str | None = None  # default: ZALO_OAUTH_URL


@dataclass(frozen=True)
class Account:
    """One channel account as the operator declared it. ``ward``: the ward's code, or None for
    an account serving every ward of the database (the single-ward settings)."""

    key: str
    kind: AccountKind
    ward: str | None = None
    token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    username: str | None = None
    api_url: str | None = None
    rate: float | None = None
    oa: OACredentials | None = None  # a Zalo OA's credentials (kind zalo_oa)

    @property
    def is_default(self) -> bool:
        return DEFAULT_KEYS.get(self.kind) == self.key

    def webhook_path(self, base: str) -> str:
        """``/webhooks/telegram`` for the default account, ``/webhooks/telegram/<key>`` for others."""
        return base if self.is_default else f"{base}/{self.key}"


@dataclass(frozen=True)
class AccountInfo:
    """What the conversation knows of the account an update came through."""

    key: str
    kind: str
    ward_id: int | None = None  # None: the account serves every ward
    username: str | None = None  # a Telegram bot's @username, for deep links


@dataclass(frozen=True)
class AccountDirectory:
    """The registered accounts by key; an unregistered key (the terminal, tests) is an account
    of its own kind serving every ward."""

    accounts: Mapping[str, AccountInfo] = field(default_factory=dict)

    def get(self, key: str) -> AccountInfo:
        found = self.accounts.get(key)
        return found if found is not None else AccountInfo(key=key, kind=key)

    def telegram_username(self, ward_id: int | None) -> str | None:
        """The @username of the Telegram bot serving ``ward_id``: the ward's own bot first,
        else one serving every ward."""
        bots = [a for a in self.accounts.values() if a.kind == AccountKind.TELEGRAM and a.username]
        own = [a for a in bots if ward_id is not None and a.ward_id == ward_id]
        shared = [a for a in bots if a.ward_id is None]
        chosen = (own or shared or [None])[0]
        return chosen.username if chosen is not None else None

    def with_username(self, key: str, username: str | None) -> AccountDirectory:
        info = self.get(key)
        return AccountDirectory({**self.accounts, key: AccountInfo(info.key, info.kind, info.ward_id, username)})


def default_accounts(settings: Settings) -> list[Account]:
    """The accounts of the single-ward settings (each serving every ward)."""
    found: list[Account] = []
    if settings.telegram_bot_token is not None:
        hooked = settings.telegram_webhook_url is not None
        found.append(Account(
            key=DEFAULT_KEYS[AccountKind.TELEGRAM], kind=AccountKind.TELEGRAM, token=settings.telegram_bot_token,
            webhook_secret=settings.telegram_webhook_secret if hooked else None,
            username=settings.telegram_bot_username, api_url=str(settings.telegram_api_url),
            rate=settings.telegram_rate,
        ))
    if settings.zalo_bot_token is not None:
        found.append(Account(
            key=DEFAULT_KEYS[AccountKind.ZALO_BOT], kind=AccountKind.ZALO_BOT, token=settings.zalo_bot_token,
            webhook_secret=settings.zalo_webhook_secret if settings.public_base_url is not None else None,
            api_url=str(settings.zalo_api_url), rate=settings.zalo_rate,
        ))
    if settings.zalo_oa_id:
        oa = None
        if settings.zalo_oa_app_id and settings.zalo_oa_app_secret is not None and settings.zalo_oa_secret_key is not None:
            oa = OACredentials(oa_id=settings.zalo_oa_id, app_id=settings.zalo_oa_app_id,
                               app_secret=settings.zalo_oa_app_secret, secret_key=settings.zalo_oa_secret_key,
                               refresh_token=settings.zalo_oa_refresh_token)
        found.append(Account(key=DEFAULT_KEYS[AccountKind.ZALO_OA], kind=AccountKind.ZALO_OA, rate=settings.zalo_rate,
                             api_url=str(settings.zalo_oa_api_url), oa=oa))
    return found


def load_accounts(settings: Settings, *, environ: Mapping[str, str] | None = None) -> list[Account]:
    """The single-ward settings' accounts and those of ``ACCOUNTS_FILE``; raises
    :class:`AccountsError` naming the first wrong entry."""
    accounts = default_accounts(settings)
    if settings.accounts_file is not None:
        accounts += read_accounts_file(settings.accounts_file, settings=settings,
                                       environ=os.environ if environ is None else environ)
    seen: set[str] = set()
    for account in accounts:
        if account.key in seen:
            raise AccountsError(f"account {account.key!r} is declared twice")
        seen.add(account.key)
    return accounts


def read_accounts_file(path: Path, *, settings: Settings, environ: Mapping[str, str]) -> list[Account]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccountsError(f"{path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AccountsError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"accounts"}
    if unknown:
        raise AccountsError(f"{path}: unknown table {sorted(unknown)[0]!r} (expected [[accounts]])")
    entries = data.get("accounts", [])
    if not isinstance(entries, list):
        raise AccountsError(f"{path}: 'accounts' must be a list of tables ([[accounts]])")
    return [_account(path, n, entry, settings=settings, environ=environ) for n, entry in enumerate(entries, 1)]


_COMMON = {"key", "kind", "ward", "api_url", "rate"}
_FIELDS = {
    AccountKind.TELEGRAM: _COMMON | {"token_env", "token_file", "webhook_secret_env", "webhook_secret_file", "username"},
    AccountKind.ZALO_BOT: _COMMON | {"token_env", "token_file", "webhook_secret_env", "webhook_secret_file"},
    AccountKind.ZALO_OA: _COMMON | {"oa_id", "app_id", "app_secret_env", "app_secret_file", "secret_key_env",
                                    "secret_key_file", "refresh_token_env", "refresh_token_file", "oauth_url"},
}
_SECRETS = ("token", "webhook_secret", "app_secret", "secret_key", "refresh_token")


def _account(path: Path, number: int, entry: Any, *, settings: Settings, environ: Mapping[str, str]) -> Account:
    where = f"{path}: account {number}"
    if not isinstance(entry, dict):
        raise AccountsError(f"{where}: expected a table")
    key = entry.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        raise AccountsError(f"{where}: 'key' must be 1-16 of a-z 0-9 _ - (starting with a letter or digit)")
    where = f"{path}: account {key!r}"
    if any(name in entry for name in _SECRETS):
        raise AccountsError(f"{where}: secrets are never written in this file; use <name>_env or <name>_file "
                            "(token_env, webhook_secret_env, app_secret_env, …)")
    try:
        kind = AccountKind(entry.get("kind"))
    except ValueError:
        kind = None
    if kind not in _FIELDS:
        raise AccountsError(f"{where}: 'kind' must be telegram, zalo or zalo_oa")
    assert kind is not None
    unknown = set(entry) - _FIELDS[kind]
    if unknown:
        raise AccountsError(f"{where}: unknown field {sorted(unknown)[0]!r} for kind {kind.value}")
    if key in DEFAULT_KEYS.values():
        raise AccountsError(f"{where}: {key!r} is the single-ward settings' account; choose another key")
    ward = entry.get("ward")
    if not isinstance(ward, str) or not ward.strip():
        raise AccountsError(f"{where}: 'ward' (the ward's code) is required")
    rate = entry.get("rate")
    if rate is not None and (not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate <= 1000):
        raise AccountsError(f"{where}: 'rate' must be a number of messages/s, above 0 and at most 1000")
    if kind == AccountKind.ZALO_OA:
        return _oa_account(where, key, ward.strip(), entry, settings=settings, environ=environ,
                           rate=float(rate) if rate is not None else settings.zalo_rate)
    token = _secret(where, "token", entry, environ, required=True)
    assert token is not None
    if kind == AccountKind.TELEGRAM:
        bot_id, _, rest = token.get_secret_value().partition(":")
        if not (bot_id.isdigit() and rest):
            raise AccountsError(f"{where}: the token is not of the form <bot id>:<secret> given by @BotFather")
    hook = _secret(where, "webhook_secret", entry, environ, required=False)
    if hook is not None and not WEBHOOK_SECRET.match(hook.get_secret_value()):
        raise AccountsError(f"{where}: the webhook secret must be 1-256 of A-Z a-z 0-9 _ -")
    default_rate = settings.telegram_rate if kind == AccountKind.TELEGRAM else settings.zalo_rate
    default_api = settings.telegram_api_url if kind == AccountKind.TELEGRAM else settings.zalo_api_url
    username = entry.get("username")
    return Account(
        key=key, kind=kind, ward=ward.strip(), token=token,
        webhook_secret=hook if settings.public_base_url is not None else None,
        username=username.lstrip("@") if isinstance(username, str) and username.strip() else None,
        api_url=str(entry.get("api_url") or default_api), rate=float(rate) if rate is not None else default_rate,
    )


def _oa_account(where: str, key: str, ward: str, entry: Mapping[str, Any], *, settings: Settings,
                environ: Mapping[str, str], rate: float) -> Account:
    """A Zalo Official Account: its ids in the file, its secrets from the environment or files."""
    ids = {}
    for name in ("oa_id", "app_id"):
        value = entry.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip().isdigit():
            raise AccountsError(f"{where}: '{name}' (digits, as the Zalo OA's settings show it) is required")
        ids[name] = value.strip()
    app_secret = _secret(where, "app_secret", entry, environ, required=True)
    secret_key = _secret(where, "secret_key", entry, environ, required=True)
    assert app_secret is not None and secret_key is not None
    return Account(
        key=key, kind=AccountKind.ZALO_OA, ward=ward, rate=rate,
        api_url=str(entry.get("api_url") or settings.zalo_oa_api_url),
        oa=OACredentials(oa_id=ids["oa_id"], app_id=ids["app_id"], app_secret=app_secret, secret_key=secret_key,
                         refresh_token=_secret(where, "refresh_token", entry, environ, required=False),
                         oauth_url=str(entry.get("oauth_url") or settings.zalo_oauth_url)),
    )


def _secret(where: str, name: str, entry: Mapping[str, Any], environ: Mapping[str, str], *,
            required: bool) -> SecretStr | None:
    env, file = entry.get(f"{name}_env"), entry.get(f"{name}_file")
    if env is not None and file is not None:
        raise AccountsError(f"{where}: give {name}_env or {name}_file, not both")
    if env is not None:
        value = environ.get(str(env), "").strip()
        if not value:
            raise AccountsError(f"{where}: the environment variable {env} ({name}_env) is not set")
        return SecretStr(value)
    if file is not None:
        try:
            value = Path(str(file)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AccountsError(f"{where}: {name}_file {file} cannot be read ({exc.strerror})") from None
        if not value:
            raise AccountsError(f"{where}: {name}_file {file} is empty")
        return SecretStr(value)
    if required:
        raise AccountsError(f"{where}: {name}_env or {name}_file is required")
    return None


def secrets_of(accounts: Iterable[Account]) -> list[str]:
    """Every secret the accounts hold, to scrub from the logs."""
    found = []
    for a in accounts:
        held = [a.token, a.webhook_secret]
        if a.oa is not None:
            held += [a.oa.app_secret, a.oa.secret_key, a.oa.refresh_token]
        found += [s.get_secret_value() for s in held if s is not None]
    return found

"""Telegram adapter (aiogram 3)."""

from bot.channels.telegram.models import import_aiogram

import_aiogram()  # before anything else imports aiogram: its types built on first use

# ruff: noqa: E402
from bot.channels.telegram.adapter import CAPABILITIES, CHANNEL, TelegramChannel

__all__ = ["CAPABILITIES", "CHANNEL", "TelegramChannel"]

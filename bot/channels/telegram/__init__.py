"""Telegram adapter (aiogram 3)."""

from bot.channels.telegram.adapter import CAPABILITIES, CHANNEL, TelegramChannel

__all__ = ["CAPABILITIES", "CHANNEL", "TelegramChannel"]

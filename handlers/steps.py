"""Where a conversation can stand; stored as readable text in ``conversation_state.step``."""

from enum import StrEnum


class Step(StrEnum):
    NEW = "new"
    CONSENT = "consent"
    CONFIRM_NAME = "confirm_name"
    ASK_NAME = "ask_name"
    CHOOSE_GROUP = "choose_group"
    MENU = "menu"
    LESSON = "lesson"
    QUIZ = "quiz"
    CONFIRM_ERASE = "confirm_erase"
    LINK_CODE = "link_code"
    ASSIST_NAME = "assist_name"  # a leader types the name of someone without a smartphone
    HELP_TEXT = "help_text"  # a resident types what they need help with
    HELP_REPLY = "help_reply"  # a leader (or admin) types the answer to a help request
    COMPOSE_TEXT = "compose_text"  # an admin types a broadcast (or sends a photo)
    COMPOSE_AUDIENCE = "compose_audience"
    COMPOSE_CONFIRM = "compose_confirm"  # the preview was shown: confirm, then choose the time
    COMPOSE_TIME = "compose_time"  # a typed "2026-11-25 08:00"
    GROUP_ADULTS = "group_adults"  # an admin types a group's adult population

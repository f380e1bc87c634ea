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
    LINK_CONFIRM = "link_confirm"

"""Lessons as data: the YAML format, its validator and the ordered library."""

from bot.curriculum.library import (
    LessonError,
    LessonLibrary,
    LessonLibraryError,
    check_directory,
    default_lessons_dir,
    load_library,
    parse_lesson,
)
from bot.curriculum.schema import Competence, Lesson, Question

__all__ = [
    "Competence",
    "Lesson",
    "LessonError",
    "LessonLibrary",
    "LessonLibraryError",
    "Question",
    "check_directory",
    "default_lessons_dir",
    "load_library",
    "parse_lesson",
]

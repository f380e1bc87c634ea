"""Lessons as data: the YAML format, its validator and the ordered library."""

from bot.curriculum.glossary import GLOSSARY_FILE, Glossary
from bot.curriculum.library import (
    CheckReport,
    LessonError,
    LessonLibrary,
    LessonLibraryError,
    LessonWarning,
    check_directory,
    default_lessons_dir,
    inspect_directory,
    load_library,
    parse_glossary,
    parse_lesson,
)
from bot.curriculum.schema import Competence, Lesson, Question

__all__ = [
    "GLOSSARY_FILE",
    "CheckReport",
    "Competence",
    "Glossary",
    "Lesson",
    "LessonError",
    "LessonLibrary",
    "LessonLibraryError",
    "LessonWarning",
    "Question",
    "check_directory",
    "default_lessons_dir",
    "inspect_directory",
    "load_library",
    "parse_glossary",
    "parse_lesson",
]

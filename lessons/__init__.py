"""Lesson content: one YAML file per lesson. Read README.md in this folder before editing."""

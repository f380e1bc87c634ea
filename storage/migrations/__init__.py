"""Alembic migrations (``hocvuso db upgrade``; ``hocvuso db revision`` for developers)."""

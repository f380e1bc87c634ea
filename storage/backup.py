"""Backing up and restoring a SQLite database file while keeping it consistent.

``backup_sqlite`` uses SQLite's online backup API: a consistent copy even while the bot writes
(each step copies pages under a read lock, and restarts if a writer changed them). ``restore_sqlite``
puts a copy back, but only when no bot process holds the worker lock beside the file (a running
bot would keep writing to the file being replaced) and only a file that is a database of this
bot (its ``alembic_version`` table answers). PostgreSQL is backed up with its own tools
(``pg_dump`` / ``pg_restore``: docs/operations.md).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from pathlib import Path


class BackupError(Exception):
    """A backup or restore that must not go on; the message says why (for the operator)."""


def backup_sqlite(database: Path, target: Path) -> str | None:
    """Copy ``database`` to ``target`` (a new file) with the online backup API; returns the
    schema revision the copy carries."""
    if not database.exists():
        raise BackupError(f"no database at {database}")
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=1024)  # a step at a time: writers are never held for long
        finally:
            copy.close()
    finally:
        source.close()
    revision = revision_of(partial)
    os.replace(partial, target)
    return revision


def revision_of(database: Path) -> str | None:
    """The schema revision recorded in a database file (BackupError if it is not one of ours)."""
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{database} is not a database of this bot ({exc})") from None
    return row[0] if row else None


def restore_sqlite(backup: Path, database: Path) -> str | None:
    """Replace ``database`` by a copy of ``backup`` (the current file kept as ``<name>.before-restore``);
    refused while a bot process holds the worker lock. Returns the restored revision."""
    revision = revision_of(backup)
    lock_path = database.with_name(database.name + ".worker.lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError("the bot is running on this database: stop it first") from None
        try:
            if database.exists():
                os.replace(database, database.with_name(database.name + ".before-restore"))
            for suffix in ("-wal", "-shm"):  # a stale write-ahead log must not be replayed onto the copy
                database.with_name(database.name + suffix).unlink(missing_ok=True)
            partial = database.with_name(database.name + ".part")
            shutil.copyfile(backup, partial)
            os.replace(partial, database)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return revision

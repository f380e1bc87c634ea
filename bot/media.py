"""Files the bot publishes on its own web endpoint (``GET /media/<name>``).

Zalo takes images by URL only, so an image reply is copied here under an unguessable
name and sent as ``{PUBLIC_BASE_URL}/media/<name>``. A name is a keyed hash of the file's
content (the key is a random salt kept in the folder): the same picture keeps one name
across restarts, and nobody can guess a name without the salt. Only names of that exact
shape are ever served, so a request cannot walk out of the folder.

Published files can carry personal data (a certificate with a name, a ward workbook sent to
an admin as a link), so they are served for ``KEEP_DAYS`` only and then deleted: Zalo
fetches an image at once, and an admin opens a report the same week. A file's modification
time is set to the store's clock when it is published, and its age is measured on the same
clock.

The photos a ward admin uploads in the dashboard's broadcast composer (``draft_photos``, named
``web-<random>.jpg|png``) live in the folder the chat composer's photos go to. A photo no
broadcast carries — its draft abandoned — is deleted ``DRAFT_PHOTO_KEPT`` after the draft last
used it (its upload, or a preview of the draft again), by the scheduler's hourly retention job
(``bot.scheduling.prune`` → :func:`prune_draft_photos`); the age is measured on the injected
clock, as above.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from storage.broadcasts import images_in_use

if TYPE_CHECKING:
    from bot.core.conversation import Clock
    from storage.db import SessionFactory

NAME = re.compile(r"^[A-Za-z0-9_-]{32}\.[a-z0-9]{1,5}$")
SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".xlsx", ".csv", ".txt"}
KEEP_DAYS = 7
CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".pdf": "application/pdf", ".csv": "text/csv", ".txt": "text/plain",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class MediaStore:
    """A folder of published files and the base URL they are reachable at (if any)."""

    def __init__(
        self, folder: Path, *, clock: Clock, public_base_url: str | None = None, keep_days: float = KEEP_DAYS
    ) -> None:
        self.folder = folder
        self.clock = clock
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.keep_seconds = keep_days * 86400

    @property
    def serves_urls(self) -> bool:
        """Whether the outside world can fetch what is published (PUBLIC_BASE_URL is set)."""
        return self.public_base_url is not None

    def _salt(self) -> bytes:
        path = self.folder / ".salt"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(secrets.token_bytes(32))
            path.chmod(0o600)
        return path.read_bytes()

    def _expired(self, path: Path, now: float) -> bool:
        return path.stat().st_mtime < now - self.keep_seconds

    def _prune(self, now: float) -> None:
        for path in self.folder.iterdir():
            if NAME.fullmatch(path.name) and self._expired(path, now):
                path.unlink(missing_ok=True)

    def _publish(self, source: Path) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        now = self.clock.now().timestamp()
        self._prune(now)
        data = source.read_bytes()
        digest = hashlib.sha256(self._salt() + data).digest()
        suffix = source.suffix.lower() if source.suffix.lower() in SUFFIXES else ".bin"
        name = base64.urlsafe_b64encode(digest).decode()[:32] + suffix
        target = self.folder / name
        if not target.exists():
            tmp = self.folder / f".{name}.{secrets.token_hex(4)}"
            shutil.copyfile(source, tmp)
            tmp.replace(target)  # atomic: a reader never sees half a file
        os.utime(target, (now, now))  # served for KEEP_DAYS from now (again, if published before)
        return name

    async def publish(self, source: Path) -> str:
        """Copy ``source`` into the folder (once) and return its public name."""
        return await asyncio.to_thread(self._publish, source)

    async def url_for(self, source: Path) -> str | None:
        """The public URL of ``source``, or None when no PUBLIC_BASE_URL is configured."""
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}/media/{await self.publish(source)}"

    def resolve(self, name: str) -> Path | None:
        """The file published under ``name``, or None (unknown or malformed name)."""
        if not NAME.fullmatch(name):
            return None
        path = self.folder / name
        if not path.is_file():
            return None
        if self._expired(path, self.clock.now().timestamp()):
            path.unlink(missing_ok=True)
            return None
        return path

    @staticmethod
    def content_type(name: str) -> str:
        return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


# -- photos of broadcasts drafted on the dashboard -------------------------------------------

DRAFT_PHOTO = re.compile(r"web-[A-Za-z0-9_-]{16}\.(?:jpg|png)")
# Longer than a working day at the composer (a session ends after 8 idle hours); a draft
# previewed again keeps its photo another day.
DRAFT_PHOTO_KEPT = timedelta(days=1)


def draft_photos(files_dir: Path) -> Path:
    """The folder of uploaded broadcast photos: the chat composer's (``files_dir/in``); the
    dashboard keeps each ward's in ``web/<ward id>`` under it (``bot.dashboard.broadcasts``)."""
    return files_dir / "in"


def keep_draft_photo(path: Path, data: bytes | None = None, *, now: datetime) -> None:
    """Write an uploaded photo (``data``), or mark one used again by its draft: its age counts
    from ``now`` (the injected clock). Blocking: call it in a worker thread."""
    if data is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.utime(path, (now.timestamp(), now.timestamp()))


def _stale(folder: Path, before: float) -> list[Path]:
    if not folder.is_dir():
        return []
    # Each ward's uploads have their own folder (``web/<ward id>``); older ones lie in ``in`` itself.
    found = [*folder.iterdir(), *folder.glob("web/*/*")]
    return [p for p in found if DRAFT_PHOTO.fullmatch(p.name) and p.is_file() and p.stat().st_mtime < before]


async def prune_draft_photos(sessions: SessionFactory, files_dir: Path, *, now: datetime) -> int:
    """Delete the dashboard's uploaded photos unused for ``DRAFT_PHOTO_KEPT`` that no broadcast
    carries (a broadcast stores its photo's resolved path). Returns how many were deleted."""
    stale = await asyncio.to_thread(_stale, draft_photos(files_dir), (now - DRAFT_PHOTO_KEPT).timestamp())
    if not stale:
        return 0
    async with sessions() as session:
        used = await images_in_use(session, paths=[str(p.resolve()) for p in stale])
    gone = [p for p in stale if str(p.resolve()) not in used]
    for path in gone:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return len(gone)

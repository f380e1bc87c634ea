# The bot as one image. Build context: the project root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/hocvuso.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY lessons ./lessons
COPY examples ./examples
RUN pip install --no-cache-dir . && useradd --create-home --uid 10001 hocvuso \
    && mkdir /data && chown hocvuso /data

USER hocvuso
VOLUME ["/data"]
# `run` applies pending migrations on SQLite, then polls Telegram.
CMD ["hocvuso", "run"]

"""The deployment files are checked here, since no Docker engine runs on this machine:
compose and the image agree with the settings, the paths exist, the two commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_compose_describes_the_single_machine_bot_with_a_data_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.single.yml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    assert bot["build"] == "."
    settings = {name.upper() for name in Settings.model_fields}
    assert set(bot["environment"]) <= settings
    assert "TELEGRAM_BOT_TOKEN" in bot["environment"]
    database = bot["environment"]["DATABASE_URL"]
    assert database.startswith("sqlite+aiosqlite:////")
    folder = str(Path(database.removeprefix("sqlite+aiosqlite:///")).parent)
    volumes = {v.split(":", 1)[1]: v.split(":", 1)[0] for v in bot["volumes"]}
    assert folder in volumes and volumes[folder] in compose["volumes"]


def test_compose_describes_the_scale_out_shape() -> None:
    """PostgreSQL with a health check and a volume, a one-shot migration, two web replicas on
    the Telegram webhook, two workers (active + standby); every secret from the environment."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    compose = yaml.safe_load(text)
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:") and "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    [volume] = postgres["volumes"]
    assert volume.split(":", 1)[0] in compose["volumes"] and volume.endswith(":/var/lib/postgresql/data")
    migrate, web, worker = services["migrate"], services["web"], services["worker"]
    assert migrate["command"] == ["hocvuso", "db", "upgrade"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert web["command"] == ["hocvuso", "run", "--role", "web"] and web["deploy"]["replicas"] == 2
    assert worker["command"] == ["hocvuso", "run", "--role", "worker"] and worker["deploy"]["replicas"] == 2
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    settings = {name.upper() for name in Settings.model_fields}
    for service in (migrate, web, worker):
        environment = service["environment"]
        assert set(environment) <= settings and service["build"] == "."
        assert environment["DATABASE_URL"].startswith("postgresql+asyncpg://hocvuso:${POSTGRES_PASSWORD")
        assert service is migrate or service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        # The web role refuses long polling: the webhook's secret and address are required.
        for secret in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "PUBLIC_BASE_URL"):
            assert environment[secret].startswith(f"${{{secret}:?"), secret
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # No secret written in the file itself: every value that names one comes from the environment.
    assert not re.search(r"(TOKEN|SECRET|PASSWORD): (?!\$\{)", text)


def test_the_image_copies_what_exists_and_runs_the_bot() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    packages = {"bot", "handlers", "storage", "lessons", "examples"}
    assert packages <= set(re.findall(r"^COPY (\w+) ", dockerfile, flags=re.M))
    assert 'CMD ["hocvuso", "run"]' in dockerfile


def test_the_two_readme_commands_and_ci() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run: ", makefile, flags=re.M) and re.search(r"^test: ", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_env_example_lists_every_setting() -> None:
    names = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    assert names == {name.upper() for name in Settings.model_fields}

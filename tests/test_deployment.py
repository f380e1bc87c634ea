"""The deployment files are checked here, since no Docker engine runs on this machine:
compose and the image agree with the settings, the paths exist, the two commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_compose_describes_the_single_machine_bot_with_a_data_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
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

"""``python -m bot`` and the ``hocvuso`` command.

The commands are in ``bot/cli``, the objects they run are built in ``bot/app.py``; here the
one clock of the process is made and handed to every command."""

from __future__ import annotations

from bot.cli import Deps, cli
from bot.core.conversation import SystemClock


def main() -> None:
    cli(obj=Deps(clock=SystemClock()))


if __name__ == "__main__":
    main()

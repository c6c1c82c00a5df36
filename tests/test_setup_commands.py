"""The README's set-up commands: the test command is the one CI runs, and the main command
works in a fresh clone, with nothing beside it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_test_command():
    commands = readme_commands()
    assert len(commands) == 2, "the README keeps exactly two set-up commands"
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_the_main_command_reads_a_file_inside_the_repository():
    words = shlex.split(readme_commands()[0])
    command = words.index("run")
    assert words[command - 1].endswith("agenther-dspy")
    given = Path(words[command + 1])
    assert not given.is_absolute()
    path = (ROOT / given).resolve()
    assert path.is_relative_to(ROOT) and path.is_file(), given
    assert record_count(path) <= 3  # the main command stays a few minutes long


def record_count(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())

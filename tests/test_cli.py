"""The `stackbench` command line as a newcomer meets it: names are checked before anything
starts (one line, the valid names, a non-zero exit, no traceback), and `stackbench stacks` lists
what can be measured."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stackbench.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says", "lists"),
    [
        (["bench", "--impl", "fastapi"], "unknown implementation 'fastapi'", "graphql"),
        (["bench", "--server", "uvicron"], "unknown server 'uvicron'", "granian-asgi"),
        (["bench", "--stack", "rest-uvicron"], "unknown stack 'rest-uvicron'", "rest-uvicorn"),
        (["bench", "--scenario", "cards"], "unknown scenario 'cards'", "journey"),
        (["bench", "--profile", "quik"], "unknown profile 'quik'", "standard"),
        (["bench", "--impl", "graphql", "--server", "waitress"], "no stack matches", "stackbench stacks"),
        (["serve", "--impl", "fastapi"], "unknown implementation 'fastapi'", "rest"),
        (["serve", "--impl", "flask", "--server", "uvicorn"], "unknown WSGI server 'uvicorn'", "waitress"),
    ],
)
def test_unknown_names_are_refused_in_one_line(args: list[str], says: str, lists: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert says in lines[0] and lists in lines[0]
    assert "Traceback" not in result.output


def test_stacks_lists_every_stack_with_its_server_impl_and_api() -> None:
    from loadtests.stacks import STACKS

    result = runner.invoke(app, ["stacks"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:] if line.strip()}
    assert set(rows) == set(STACKS)
    assert rows["rest-granian"][1:4] == ["rest", "granian-asgi", "rest"]
    assert rows["graphql-uvicorn"][1:4] == ["graphql", "uvicorn", "graphql"]


def test_serve_help_names_commands_that_exist() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    assert "stackbench servers" not in result.output
    assert "stackbench stacks" in result.output

"""The console script's front matter: help, version, every sub-command importable."""
from __future__ import annotations

import importlib
import subprocess
import sys

from click.testing import CliRunner

from jobs.cli import SUBCOMMANDS, SUMMARIES, main, summary_line


def test_version_and_help() -> None:
    runner = CliRunner()
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0
    assert version.output.startswith("reusescan, version ")
    help_ = runner.invoke(main, ["--help"])
    assert help_.exit_code == 0
    for name in SUBCOMMANDS:
        assert name in help_.output


def test_every_subcommand_has_help() -> None:
    runner = CliRunner()
    for name in SUBCOMMANDS:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_the_command_list_shows_each_commands_own_summary() -> None:
    assert set(SUMMARIES) == set(SUBCOMMANDS)
    for name, target in SUBCOMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        for limit in (45, 200):
            assert summary_line(SUMMARIES[name], limit) == command.get_short_help_str(limit), name


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2


def test_python_dash_m_jobs() -> None:
    done = subprocess.run([sys.executable, "-m", "jobs", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "reusescan" in done.stdout


def test_the_command_line_front_imports_neither_torch_nor_ray() -> None:
    """`reusescan --help` stays fast: sub-commands (and their heavy imports) load only when run."""
    code = ("import sys; from click.testing import CliRunner; from jobs.cli import main; "
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0; "
            "print(sorted(m for m in ('torch', 'ray', 'faiss', 'pymupdf') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

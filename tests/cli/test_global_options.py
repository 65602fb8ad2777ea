"""Global options work before or after the subcommand: ``lca-tui train --session DIR`` is
``lca-tui --session DIR train``; a value given before is not reset by the subcommand."""

import argparse

import pytest

from lca_tui.cli import build_parser, main


def _subcommands(parser):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _globals(parser):
    return [a for a in parser._actions if a.option_strings
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


def _value(action):
    """A valid value: a count for typed options (--threads), a path for the others."""
    return "3" if action.type is not None else "/tmp/somewhere"


def _required(sub):
    """Placeholder values for a subcommand's required positionals and options."""
    argv = []
    for a in sub._actions:
        value = next(iter(a.choices)) if a.choices else "1" if a.type is int else "x"
        if not a.option_strings and a.required and a.nargs not in ("?", "*"):
            argv.append(value)
        elif a.option_strings and a.required:
            argv += [a.option_strings[0], value]
    return argv


PARSER = build_parser()
# Every (subcommand, global option) pair, except a subcommand's own flag of the same name (probe's
# and hijack's --model, which hijack repeats to compare models): that one is the subcommand's.
CASES = [(cmd, a.option_strings[0], a.dest) for cmd, sub in _subcommands(PARSER).items()
         for a in _globals(PARSER) if sub._option_string_actions[a.option_strings[0]].help == a.help]


def test_the_globals_are_there():
    flags = {a.option_strings[0] for a in _globals(PARSER)}
    assert {"--session", "--model", "--threads"} <= flags
    assert {"train", "report", "sessions"} <= set(_subcommands(PARSER))


@pytest.mark.parametrize("cmd,flag,dest", CASES)
def test_global_option_before_or_after_the_command(cmd, flag, dest):
    action = PARSER._option_string_actions[flag]
    rest = _required(_subcommands(PARSER)[cmd])
    value = _value(action)
    before = PARSER.parse_args([flag, value, cmd, *rest])
    after = PARSER.parse_args([cmd, *rest, flag, value])
    expected = action.type(value) if action.type is not None else value
    assert getattr(before, dest) == getattr(after, dest) == expected
    neither = PARSER.parse_args([cmd, *rest])
    assert getattr(neither, dest, None) == action.default


def test_train_records_into_the_session_given_after_the_command(tmp_path):
    session = tmp_path / "s1"
    rc = main(["train", "--m", "3", "--L", "8", "--d", "8", "--d-a", "8", "--batch-size", "16",
               "--eval-size", "64", "--device", "cpu", "--steps", "4", "--eval-every", "2", "--json",
               "--session", str(session)])
    assert rc == 0
    runs = list((session / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint.safetensors").exists()


def test_unknown_option_after_the_command_is_still_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--no-such-flag"])
    assert exc.value.code == 2 and "--no-such-flag" in capsys.readouterr().err

"""``qp-desktop``'s command line, as argparse reads it: the options spelled out or abbreviated,
the tenant address normalised, mistakes and ``--help`` answered by argparse."""

from __future__ import annotations

from pathlib import Path

import pytest

from qp_desktop.main import parse_args

SPELLED_OUT = [
    [],
    ["--tenant", "https://qp.example.com"],
    ["--tenant=https://qp.example.com/"],
    ["--tenant", "http://127.0.0.1:9", "--exit-when-shown"],
    ["--screenshot", "/tmp/shots", "--check-layout"],
    ["--screenshot=shots", "--data-dir", "/tmp/data"],
    ["--tenant", "https://a.example.com", "--tenant", "https://b.example.com"],
    ["--data-dir=/tmp/a=b", "--exit-when-shown", "--exit-when-shown"],
]


@pytest.mark.parametrize("argv", SPELLED_OUT)
def test_spelled_out_command_line_is_read(argv):
    args = parse_args(argv)
    assert set(vars(args)) == {"tenant", "screenshot", "check_layout", "data_dir",
                               "exit_when_shown"}


def test_tenant_address_from_the_command_line_is_normalised():
    args = parse_args(["--tenant", "qp.example.com/"])
    assert args.tenant == "https://qp.example.com"
    assert args.screenshot is None and args.check_layout is False


def test_abbreviated_option_still_works_through_argparse():
    assert parse_args(["--ten", "https://qp.example.com"]).tenant == "https://qp.example.com"
    assert parse_args(["--screenshot", "shots"]).screenshot == Path("shots")


@pytest.mark.parametrize("argv", [
    ["--tenant"], ["--tenant", "--check-layout"], ["--check-layout=yes"],
    ["--bogus"], ["shots"], ["--screenshot", "-x"],
])
def test_mistyped_command_line_gets_argparse_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert "usage: qp-desktop" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--tenant URL" in out and "--screenshot DIR" in out and "--check-layout" in out
    assert "--data-dir" not in out and "--exit-when-shown" not in out


def test_unusable_tenant_address_is_refused_with_a_sentence(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--tenant", "ftp://qp.example.com"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: qp-desktop" in err and "qp-desktop: error:" in err

"""How the bundle's executable doubles as the embedded tenant's Python (fast unit tests;
test_bundle.py proves it for real)."""

from __future__ import annotations

import sys

import pytest

from qp_desktop.services import bundle

calls: list[list[str]] = []


def fake_main(argv: list[str]) -> int:
    calls.append(list(argv))
    return 7


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", ["qp-desktop"])
    calls.clear()


def test_outside_a_bundle_nothing_is_dispatched():
    assert not bundle.is_frozen()
    assert bundle.run_module_if_requested(["-m", "qp_tenant", "serve"]) is None
    assert bundle.module_command("qp_tenant", "serve") == [sys.executable, "-m", "qp_tenant",
                                                           "serve"]


def test_in_a_bundle_dash_m_runs_the_module_main(frozen, monkeypatch):
    monkeypatch.setitem(bundle.CHILD_MODULES, "qp_tenant", f"{__name__}:fake_main")
    assert bundle.run_module_if_requested(["-m", "qp_tenant", "serve", "--port", "0"]) == 7
    assert calls == [["serve", "--port", "0"]]
    assert sys.argv == ["qp_tenant", "serve", "--port", "0"]


def test_in_a_bundle_the_app_starts_normally_without_dash_m(frozen):
    assert bundle.run_module_if_requested(["--screenshot", "x"]) is None
    assert bundle.run_module_if_requested([]) is None


def test_in_a_bundle_only_known_modules_run(frozen, capsys):
    assert bundle.run_module_if_requested(["-m", "os", "x"]) == 2
    assert "cannot run module 'os'" in capsys.readouterr().err
    with pytest.raises(ValueError):
        bundle.module_command("os")


def test_the_real_targets_exist():
    import importlib

    for target in bundle.CHILD_MODULES.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function))

"""Wizard progress persistence (plain QSettings in a private INI file; no tenant needed)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from qp_desktop.services.wizard_progress import WizardProgress, scope_for

URL_STEPS = ("url", "test_action", "real_test")


def _settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_a_new_token_reopens_only_the_done_url_steps(tmp_path):
    progress = WizardProgress(_settings(tmp_path), scope_for("https://qp.example", "1"))
    assert progress.follow_token("7", URL_STEPS, "why") == []  # the first token: nothing to redo
    for key in ("open_workflows", "url", "test_action"):
        progress.mark_done(key, note="n")
    assert progress.follow_token("7", URL_STEPS, "why") == []  # same token: nothing changes
    reopened = progress.follow_token("8", URL_STEPS, "update the webhook URL in IT Glue")
    assert reopened == ["url", "test_action"]  # real_test was never done
    assert progress.step("url").reopened == "update the webhook URL in IT Glue"
    assert not progress.is_done("url") and progress.is_done("open_workflows")

    again = WizardProgress(_settings(tmp_path), progress.scope)  # a restart
    assert again.state.token_id == "8"
    assert again.step("test_action").reopened
    again.mark_done("url")
    assert not again.step("url").reopened


def test_a_new_tenant_address_reopens_the_done_url_steps(tmp_path):
    # The local tenant moved to a new port (or got a public address): the URL in IT Glue
    # no longer reaches it, even with the same token.
    progress = WizardProgress(_settings(tmp_path), scope_for("local", "1"))
    assert progress.follow_address("http://127.0.0.1:41001", URL_STEPS, "why") == []
    for key in URL_STEPS:
        progress.mark_done(key, note="n")
    assert progress.follow_address("http://127.0.0.1:41001/", URL_STEPS, "why") == []
    again = WizardProgress(_settings(tmp_path), progress.scope)  # a restart, same port
    assert again.follow_address("http://127.0.0.1:41001", URL_STEPS, "why") == []
    assert again.follow_address("http://127.0.0.1:52002", URL_STEPS, "moved") == \
        list(URL_STEPS)
    assert again.step("url").reopened == "moved"


def test_progress_is_per_tenant_and_start_over_keeps_the_email(tmp_path):
    acme = WizardProgress(_settings(tmp_path), scope_for("https://qp.example", "1"))
    other = WizardProgress(_settings(tmp_path), scope_for("https://qp.example", "2"))
    acme.mark_done("finish")
    acme.set_confirmed("agent", True)
    acme.set_failure_email("alerts@acme.test")
    assert not other.is_done("finish")
    acme.reset()
    reloaded = WizardProgress(_settings(tmp_path), acme.scope)
    assert not reloaded.is_done("finish") and not reloaded.is_confirmed("agent")
    assert reloaded.state.failure_email == "alerts@acme.test"


def test_unreadable_progress_starts_over(tmp_path):
    settings = _settings(tmp_path)
    scope = scope_for("local", "1")
    settings.setValue(f"wizard_progress/{scope}", "{not json")
    assert WizardProgress(settings, scope).state.steps == {}

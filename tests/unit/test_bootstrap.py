"""The composition root: one App per settings, each part built once, given parts used as they are, and a
deployment without the Dynamics app registration refused the same way every time."""

from __future__ import annotations

import pytest

from core import bootstrap
from core.bootstrap import App
from core.services.config.metadata_check import DynamicsMetadataCheck
from core.settings import SettingsError, get_settings, load_settings

STORAGE = "UseDevelopmentStorage=true"


@pytest.fixture()
def fresh_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "_make", App)
    monkeypatch.setattr(bootstrap, "_current", None)


def test_one_app_per_settings_object(monkeypatch: pytest.MonkeyPatch, fresh_root: None) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", STORAGE)
    get_settings.cache_clear()
    first = bootstrap.app()
    assert bootstrap.app() is first and first.settings is get_settings()
    get_settings.cache_clear()  # new settings (e.g. a test changed the environment): a new App
    second = bootstrap.app()
    assert second is not first and second.settings is get_settings()
    get_settings.cache_clear()


def test_parts_are_built_once_and_shared() -> None:
    app = App(load_settings({"AzureWebJobsStorage": STORAGE}))
    assert app.storage is app.storage
    assert app.export_store is app.export_store and app.export_store is not app.activity_store
    assert app.fields_service is app.fields_service
    assert app.dynamics_budget is app.dynamics_budget  # one per app: every client reports to the same one
    off = App(load_settings({"AzureWebJobsStorage": STORAGE, "DYNAMICS_BUDGET_ENABLED": "false"}))
    assert off.dynamics_budget is None  # each client's adaptive limiter alone


def test_every_configuration_save_is_checked_against_live_dynamics_by_default() -> None:
    app = App(load_settings({"AzureWebJobsStorage": STORAGE}))
    [check] = app.config_service._checks
    assert isinstance(check, DynamicsMetadataCheck) and check._service is app.fields_service
    assert (
        App(load_settings({"AzureWebJobsStorage": STORAGE}), metadata_checks=[]).config_service._checks == []
    )


def test_given_parts_are_used_as_they_are() -> None:
    settings = load_settings({"AzureWebJobsStorage": STORAGE})
    fields = App(settings).fields_service
    app = App(settings, fields_service=fields, dynamics_budget=None)
    assert app.fields_service is fields
    assert app.dynamics_budget is None


def test_a_deployment_without_the_dynamics_app_is_refused_the_same_way_each_time() -> None:
    app = App(load_settings({"AzureWebJobsStorage": STORAGE}))  # no DYNAMICS_CLIENT_ID, no key
    with pytest.raises(SettingsError) as first:
        _ = app.connection
    with pytest.raises(SettingsError) as again:
        _ = app.connection
    assert str(again.value) == str(first.value) and again.value is not first.value

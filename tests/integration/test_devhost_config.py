"""The devhost reads host.json, local.settings.json and route templates as the Functions host does.
(Pure functions: no services needed.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.config import (
    HostConfig,
    HostConfigError,
    apply_settings,
    load_local_settings,
    parse_timespan,
    resolve_setting_refs,
    restore_settings,
)
from devhost.routing import RouteTemplate


def write_settings(path: Path, values: dict[str, str]) -> None:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))


def test_local_settings_created_from_the_example_when_missing(tmp_path: Path) -> None:
    write_settings(tmp_path / "local.settings.json.example", {"A": "1"})
    assert load_local_settings(tmp_path / "local.settings.json") == {"A": "1"}
    assert json.loads((tmp_path / "local.settings.json").read_text())["Values"] == {"A": "1"}


def test_stale_local_settings_get_new_example_keys_but_keep_their_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_settings(tmp_path / "local.settings.json.example", {"A": "example", "NEW": "added-later"})
    write_settings(tmp_path / "local.settings.json", {"A": "mine"})
    assert load_local_settings(tmp_path / "local.settings.json") == {"A": "mine", "NEW": "added-later"}
    assert "NEW" in caplog.text


def test_encrypted_or_broken_settings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text('{"IsEncrypted": true, "Values": {}}')
    with pytest.raises(HostConfigError, match="encrypted"):
        load_local_settings(path)
    path.write_text("{not json")
    with pytest.raises(HostConfigError, match="not valid JSON"):
        load_local_settings(path)


def test_real_environment_wins_over_settings_and_is_restored() -> None:
    env = {"KEEP": "from-env"}
    previous = apply_settings({"KEEP": "from-file", "NEW": "from-file"}, env)
    assert env == {"KEEP": "from-env", "NEW": "from-file"}
    restore_settings(previous, env)
    assert env == {"KEEP": "from-env"}


def test_host_json_queue_options_and_defaults(tmp_path: Path) -> None:
    assert parse_timespan("00:00:10") == 10 and parse_timespan("1.00:00:00.5") == 86400.5
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"extensions": {"http": {"routePrefix": ""}, "queues": {"batchSize": 8}}}))
    config = HostConfig.load(path, {"extensions": {"queues": {"maxDequeueCount": 2}}})
    assert config.route_prefix == ""
    assert config.queues.batch_size == 8 and config.queues.effective_new_batch_threshold == 4
    assert config.queues.max_dequeue_count == 2 and config.queues.message_encoding == "base64"
    assert HostConfig.load(None).route_prefix == "api"
    for bad in ({"batchSize": 33}, {"messageEncoding": "utf8"}, {"visibilityTimeout": "10s"}):
        with pytest.raises(HostConfigError):
            HostConfig.from_json({"extensions": {"queues": bad}})


def test_setting_references_resolve_or_name_the_missing_setting() -> None:
    assert resolve_setting_refs("%Q%-out", {"Q": "jobs"}) == "jobs-out"
    with pytest.raises(HostConfigError, match="%MISSING%"):
        resolve_setting_refs("%MISSING%", {})


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("dynamics/config/{step}", "dynamics/config/field-mapping", {"step": "field-mapping"}),
        ("Dynamics/Config", "dynamics/config", {}),
        ("items/{id:int:min(1)}", "items/0", None),
        ("items/{id:int:range(1,9)}", "items/7", {"id": "7"}),
        ("items/{id:guid?}", "items", {}),
        ("pages/{n=1}", "pages", {"n": "1"}),
        ("code/{c:length(2)}", "code/abc", None),
        ("code/{c:regex(^[a-z]+$)}", "code/ab1", None),
        ("files/{name}.{ext}", "files/report.pdf", {"name": "report", "ext": "pdf"}),
        ("files/{*rest}", "files/a/b%20c", {"rest": "a/b c"}),
        ("a/{x:alpha}", "a/b/c", None),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    found = RouteTemplate(template).match(path)
    assert (found.params if found else None) == expected


def test_bad_route_templates_fail_at_start() -> None:
    for bad in ("a/{x:nosuch}", "a/{x}/{x}", "a/{1x}"):
        with pytest.raises(HostConfigError):
            RouteTemplate(bad)

"""Real-client conformance, second client: the npm library ``dynamics-web-api`` (pinned in package.json,
repo AleksandrRogov/DynamicsWebApi) runs UNCHANGED against the emulator over HTTPS, next to Microsoft's
Python SDK (test_dataverse_sdk_conformance.py).

``dynamics_web_api_conformance.cjs`` uses the library as an application would (token callback, Node
trusting the local CA through ``NODE_EXTRA_CA_CERTS``) and reports what it saw for each step; this module
runs it once with ``node`` and asserts on the report. The library writes ``$batch`` bodies with LF line
ends (the Python SDK writes CRLF) and sends collection-valued disassociations as ``DELETE <nav>(<id>)/$ref``.
Pages (webapi/): create-entity-web-api.md, update-delete-entities-using-web-api.md,
perform-conditional-operations-using-web-api.md, query/page-results.md,
execute-batch-operations-using-web-api.md, associate-disassociate-entities-using-web-api.md,
query-metadata-web-api.md, reference/whoami.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.dataverse import DataverseEmulator
from emulators.dataverse.server import DEFAULT_USER_ID
from emulators.tls import ensure_ca

pytestmark = pytest.mark.integration

TOKEN = "static-test-token"
REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("dynamics_web_api_conformance.cjs")
PACKAGE = REPO_ROOT / "node_modules" / "dynamics-web-api" / "package.json"
# An alternate key on e-mail, so the library's upsert by key can run (schema files add keys).
SCHEMA = {"tables": {"contact": {"keys": [{"name": "new_contact_email_key", "columns": ["emailaddress1"]}]}}}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not PACKAGE.exists():
        raise RuntimeError("node or dynamics-web-api is missing: run `bash scripts/setup.sh` (npm ci) first")
    assert json.loads(PACKAGE.read_text())["version"] == "2.5.0"  # the version package.json pins
    schema_path = tmp_path_factory.mktemp("schema") / "schema.json"
    schema_path.write_text(json.dumps(SCHEMA))
    with DataverseEmulator(schema_path=schema_path, accepted_tokens=(TOKEN,)) as emulator:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY"))},
            "DATAVERSE_URL": emulator.url + "/",
            "DATAVERSE_TOKEN": TOKEN,
            "NODE_EXTRA_CA_CERTS": str(ensure_ca().cert_path),
            "NO_PROXY": "127.0.0.1",
        }
        done = subprocess.run(
            [node, str(SCRIPT)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result["_emulator"] = emulator
        yield result


def value(report: dict[str, Any], step: str) -> Any:
    outcome = report[step]
    assert outcome["ok"], f"{step}: {outcome['error']}"
    return outcome["value"]


def test_the_script_ran_every_step(report: dict[str, Any]) -> None:
    assert "fatal" not in report, report.get("fatal")
    failed = {name: r["error"] for name, r in report.items() if not name.startswith("_") and not r["ok"]}
    assert failed == {}


def test_whoami_names_the_token_user(report: dict[str, Any]) -> None:
    """reference/whoami.md: the static token maps to the default integration user."""
    assert value(report, "whoami") == DEFAULT_USER_ID


def test_crud_with_representation_etag_and_delete(report: dict[str, Any]) -> None:
    """create-entity-web-api.md (return=representation), update with If-Match (a stale ETag is refused with
    412 and changes nothing; perform-conditional-operations-using-web-api.md), delete (then 404)."""
    created = value(report, "create")
    assert created["fullname"].startswith("Ada ")
    retrieved = value(report, "retrieve")
    assert retrieved["fullname"] == created["fullname"] and retrieved["etag"].startswith('W/"')
    assert value(report, "update_with_etag") == "Engineer"
    assert value(report, "stale_etag_is_refused") == {"returned": False, "jobtitle": "Engineer"}
    assert value(report, "delete") == 404


def test_upsert_by_alternate_key_creates_then_updates(report: dict[str, Any]) -> None:
    """perform-conditional-operations-using-web-api.md: PATCH contacts(emailaddress1='...') twice."""
    assert value(report, "upsert_by_alternate_key") == [["Grace", "Admiral"]]


def test_batch_change_set_with_content_id_and_rollback(report: dict[str, Any]) -> None:
    """execute-batch-operations-using-web-api.md: a change set with $1 references answers every part; a
    failing change set leaves nothing behind and the library raises."""
    assert value(report, "batch_change_set")["count"] == 7
    assert value(report, "failed_change_set_rolls_back") == {"failed": True, "left": 0}


def test_paging_follows_next_links(report: dict[str, Any]) -> None:
    """query/page-results.md: odata.maxpagesize pages and retrieveAll follows @odata.nextLink."""
    paging = value(report, "paging")
    # Ada, Grace (upsert) and the six batch contacts share the run's last name.
    assert paging == {"firstPage": 3, "hasNextLink": True, "total": 8, "distinct": 8}


def test_collection_valued_associate_expand_and_disassociate(report: dict[str, Any]) -> None:
    """associate-disassociate-entities-using-web-api.md: POST <nav>/$ref and DELETE <nav>(<id>)/$ref on a
    one-to-many and on the teammembership_association many-to-many relationship."""
    account_id = value(report, "batch_change_set")["accountId"]
    assert value(report, "associate_collection") == account_id
    assert value(report, "expand_collection") == 7  # six batch contacts plus the associated one
    assert value(report, "disassociate_collection") is None
    assert value(report, "many_to_many") == {"linked": [DEFAULT_USER_ID], "after": 0}


def test_metadata_casts_and_nested_expand(report: dict[str, Any]) -> None:
    """query-metadata-web-api.md: EntityDefinitions by LogicalName, a Picklist cast with
    $expand=OptionSet($select=Options), a String cast of one attribute with MaxLength."""
    assert value(report, "entity_metadata") == ["contacts", "contactid", "fullname"]
    assert value(report, "picklist_cast_with_nested_expand") == [[1, "Male"], [2, "Female"]]
    assert value(report, "string_cast_single_attribute") == ["emailaddress1", 100]

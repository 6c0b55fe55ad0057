"""The README's first command (`bash scripts/demo.sh`) end to end, on free ports with its own stack state.

One run (set-up skipped: the test environment is set up already) proves that the stack starts Azurite,
the three stand-ins and the devhost wired together, that the demo connects, configures, exports, logs
activities and re-exports purely over HTTP with the outcomes the sample data is built to produce, that the
summary a newcomer reads shows them, that no OAuth code reaches the transcript, and that the stack stops
leaving no process behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devhost.launcher import REPO_ROOT, free_port

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import demo_data

pytestmark = pytest.mark.e2e

EXPECTED_FIRST, EXPECTED_SECOND = demo_data.expected_counts()


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    summary: dict[str, Any]
    pids: list[int]
    state_dir: Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    tmp = tmp_path_factory.mktemp("demo")
    state_dir = tmp / "stack"
    summary_path = tmp / "summary.json"
    env = {
        **os.environ,
        "DEMO_SKIP_SETUP": "1",
        "DEMO_SUMMARY_JSON": str(summary_path),
        "STACK_STATE_DIR": str(state_dir),
        "STACK_DEVHOST_PORT": str(free_port()),
        "STACK_BLOB_PORT": str(free_port()),
        "STACK_QUEUE_PORT": str(free_port()),
        "STACK_TABLE_PORT": str(free_port()),
    }
    # Record the stack's pids while it runs: the state file is gone once it stopped.
    pids: list[int] = []
    process = subprocess.Popen(
        ["bash", "scripts/demo.sh"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=280)
    finally:
        if process.poll() is None:
            process.kill()
    for line in stdout.splitlines():
        found = re.match(r"stack: \S+ running \(pid (\d+),", line)
        if found:
            pids.append(int(found.group(1)))
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    yield DemoRun(process.returncode, stdout, stderr, summary, pids, state_dir)


def test_the_demo_succeeds_and_stops_the_whole_stack(run: DemoRun) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert len(run.pids) == 5, run.stdout[:2000]  # azurite, entra, keyvault, dataverse, devhost
    assert not [pid for pid in run.pids if pid_alive(pid)], "the demo left stack processes running"
    assert not (run.state_dir / "state.json").exists()


def test_the_connection_goes_through_the_entra_stand_in_and_prints_no_oauth_code(run: DemoRun) -> None:
    # the callback connects nothing; the admin who started completes with the handle (never printed)
    assert "?dynamics=confirm&handle=... (nothing connected yet)" in run.stdout
    assert "signed in as integration.user@contoso.example (tenant " in run.stdout
    assert "code=" not in run.stdout and "code." not in run.stdout


def test_the_first_export_has_the_outcomes_the_sample_list_is_built_for(run: DemoRun) -> None:
    first = run.summary["export1"]
    assert {k: first["counts"][k] for k in EXPECTED_FIRST} == EXPECTED_FIRST
    assert first["state"] == "partially_failed"  # the one record Dynamics refused
    table = {
        m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4))
        for m in re.finditer(r"^\s+(\w+)\s+(\d+)\s+(\d+)\s+(yes|NO.*)$", run.stdout, re.M)
    }
    for outcome, count in EXPECTED_FIRST.items():
        assert table[outcome] == (count, EXPECTED_SECOND[outcome], "yes"), outcome
    assert run.summary["countsAsBuilt"] is True


def test_the_same_export_again_changes_nothing(run: DemoRun) -> None:
    second = run.summary["export2"]
    assert {k: second["counts"][k] for k in EXPECTED_SECOND} == EXPECTED_SECOND


def test_match_explanations_name_the_rule_and_the_normalised_values(run: DemoRun) -> None:
    examples = run.summary["matchExamples"]
    linkedin = next(e for e in examples if "by rule 'linkedin'" in e)
    # Dynamics holds https://www.linkedin.com/in/<slug>/, the list linkedin.com/in/<Slug>: one value.
    assert re.search(r"new_linkedinurl = 'in/[a-z0-9à-ÿ-]+'", linkedin), linkedin
    name = next(e for e in examples if "by rule 'name_company'" in e)
    # Dynamics has the name in capitals at "NIMBUS ... Ltd.": accents, case and punctuation folded.
    assert "lastName ~ lastname = 'alvarez'" in name and "parentcustomerid_account/name" in name


def test_the_record_dynamics_refused_carries_the_dynamics_error_code(run: DemoRun) -> None:
    [failed] = run.summary["failed"]
    assert failed["platformId"] == "ct-shared-inbox"
    # Another Dynamics contact already holds this e-mail (the org's alternate key): the export says so,
    # naming the column and Dynamics' own code, instead of pretending the record was someone else's.
    assert [(e.get("field"), e.get("code")) for e in failed["errors"]] == [("emailaddress1", "0x80060892")]
    assert "Refused by Dynamics:\n    ct-shared-inbox" in run.stdout
    # records caught before sending are not reported as refused by Dynamics
    invalid = "Invalid before sending (nothing sent to Dynamics):\n    ct-bad-0: professionalEmail:"
    assert invalid in run.stdout


def test_activities_are_attributed_as_the_user_mapping_says(run: DemoRun) -> None:
    activities = run.summary["activities"]
    assert activities["state"] == "succeeded"
    assert activities["counts"]["created"] == 11
    by_source: dict[str, int] = {}
    for row in activities["byActor"]:
        by_source[row["how"]] = by_source.get(row["how"], 0) + row["count"]
    assert by_source == {
        "identity_mapping, impersonated": 3,  # LinkedIn messages by the mapped identity's user
        "user_mapping, impersonated": 4,  # e-mails: the identity's platform user is mapped
        "default_owner": 4,  # calls by an unmapped identity, tasks without one
    }
    assert any(row["what"] == "linkedin_message -> new_linkedinactivity" for row in activities["byActor"])


def test_campaign_properties_are_written_in_the_documented_format(run: DemoRun) -> None:
    written = run.summary["campaignProperties"]
    assert written["new_campaigns"] == "Q3 Outbound"
    assert written["new_campaignstatus"] == "Q3 Outbound: replied"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d email_sent: Intro sent", written["new_activities"])


def test_the_summary_prints_timings(run: DemoRun) -> None:
    timings = run.summary["timings"]
    assert {"export #1", "export #2", "activities"} <= set(timings)
    assert "== Timings" in run.stdout


def test_embedded_companies_are_created_once_or_matched_by_domain(run: DemoRun) -> None:
    companies = run.summary["companies"]
    new = demo_data.COMPANY_COUNT - demo_data.EXISTING_COMPANIES  # the others exist under www. URLs
    assert companies["inList"] == demo_data.COMPANY_COUNT
    assert companies["created"] == new
    assert companies["accountsAfter"] - companies["accountsBefore"] == new


def test_the_summary_shows_every_health_check(run: DemoRun) -> None:
    assert re.search(r"status ok: storage ok \([\d.]+ ms\), keyVault ok \([\d.]+ ms\)", run.stdout)
    assert re.search(
        r"on-demand Dynamics check: connected \(WhoAmI user [0-9a-f-]{36}, same as connected: True",
        run.stdout,
    )


def _bicep_names(var: str) -> set[str]:
    text = (REPO_ROOT / "infra" / "app" / "storage.bicep").read_text()
    body = re.search(rf"^var {var} = \[(.*?)^\]", text, re.M | re.S)
    assert body, var
    return set(re.findall(r"^\s+'([^']+)'", body.group(1), re.M))


def test_keep_running_leaves_a_working_stack_whose_storage_infra_provisions(tmp_path: Path) -> None:
    """`--keep-running`: the demo returns with the stack up (the API answers a fresh caller token, the jobs
    it ran are there); every table, queue and container the run made exists in infra/app/storage.bicep;
    `stack.py stop` then ends every process."""
    import requests
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    from core.adapters.storage.tables import AZURITE_ACCOUNT, AZURITE_KEY

    ports = {name: free_port() for name in ("DEVHOST", "BLOB", "QUEUE", "TABLE")}
    env = {
        **os.environ,
        "DEMO_SKIP_SETUP": "1",
        "STACK_STATE_DIR": str(tmp_path / "stack"),
        **{f"STACK_{name}_PORT": str(port) for name, port in ports.items()},
    }
    done = subprocess.run(
        ["bash", "scripts/demo.sh", "--keep-running"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    pids = [int(p) for p in re.findall(r"stack: \S+ running \(pid (\d+),", done.stdout)]
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "demo: the stack is still running:" in done.stdout
        assert len(pids) == 5 and all(pid_alive(pid) for pid in pids)
        workspace = re.search(r"--print-token --workspace (ws-demo-[0-9a-f]+)", done.stdout)
        assert workspace, done.stdout[-2000:]
        token = subprocess.run(
            [sys.executable, "scripts/demo.py", "--print-token", "--workspace", workspace.group(1)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        session = requests.Session()
        session.trust_env = False
        api = f"http://127.0.0.1:{ports['DEVHOST']}/api"
        assert session.get(f"{api}/health", timeout=10).json()["status"] == "ok"
        jobs = session.get(
            f"{api}/dynamics/exports", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert jobs.status_code == 200 and len(jobs.json()["jobs"]) == 2

        account = f"http://127.0.0.1:{{}}/{AZURITE_ACCOUNT}"
        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={account.format(ports['BLOB'])};QueueEndpoint={account.format(ports['QUEUE'])};"
            f"TableEndpoint={account.format(ports['TABLE'])};"
        )
        tables = {t.name for t in TableServiceClient.from_connection_string(conn).list_tables()}
        queues = {q.name for q in QueueServiceClient.from_connection_string(conn).list_queues()}
        containers = {c.name for c in BlobServiceClient.from_connection_string(conn).list_containers()}
        # What the Functions host keeps for itself (azure-webjobs-*) it creates on Azure too.
        containers = {c for c in containers if not c.startswith("azure-webjobs-")}
        assert {"DynamicsConnections", "ExportJobs", "ActivityRecords"} <= tables  # the run did use storage
        assert tables <= _bicep_names("tables"), tables - _bicep_names("tables")
        assert queues <= _bicep_names("queues"), queues - _bicep_names("queues")
        assert containers <= _bicep_names("containers"), containers - _bicep_names("containers")
    finally:
        subprocess.run([sys.executable, "scripts/stack.py", "stop"], cwd=REPO_ROOT, env=env, timeout=60)
    assert not [pid for pid in pids if pid_alive(pid)], "stack.py stop left processes running"

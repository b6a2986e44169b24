"""Three real drills of one service (the ASL under moto, on the sandbox mesh): their manifests form one hash
chain in the order they finished, `livefire verify` follows it locally and in the stack, and removing the
middle drill's manifest breaks the link that names it."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from livefire.evidence.manifest import manifest_digest
from livefire.spec import parse_spec
from livefire_local.cli import main
from livefire_local.evidence_sources import verify_folder
from livefire_local.runner import copy_evidence, follow_execution, sandbox_session, start_drill
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document
from tests.keys import local_verifier

pytestmark = pytest.mark.slow
# Short phases and no objectives: each drill takes a few seconds and only its evidence matters here.
PHASES = {"baseline": "1s", "lead": "0s", "fault": "1s", "recovery": "1s"}


def test_three_drills_of_a_service_form_one_chain_that_verify_follows_and_a_removed_manifest_breaks(
    unique_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = sandbox_spec_document(phases=PHASES, objectives={})
    drills = [f"{unique_id}-{n}" for n in (1, 2, 3)]
    evidence = tmp_path / "livefire-evidence"
    with sandbox_session(parse_spec(document), MESH_DIR, ROOT) as (_mesh, stack):
        for drill_id in drills:
            arn = start_drill(stack, drill_id, {"spec": document})
            execution = follow_execution(stack, arn, 60.0, lambda _event: None)
            assert execution["status"] in ("SUCCEEDED", "FAILED"), execution
            copy_evidence(stack, f"drills/payments/{drill_id}/", evidence / drill_id)
        table = boto3.resource("dynamodb").Table(stack.table)
        records = {d: table.get_item(Key={"pk": f"DRILL#{d}", "sk": "DRILL"})["Item"] for d in drills}
        head = table.get_item(Key={"pk": "CHAIN#payments", "sk": "HEAD"})["Item"]
        capsys.readouterr()
        key = ["--key-id", stack.template.arn_of("EvidenceSigningKey")]
        remote_code = main(["verify", drills[2], "--bucket", stack.bucket, "--table", stack.table, *key])
        remote_out = capsys.readouterr().out
        chain_code = main(["verify", "--chain", "payments", "--bucket", stack.bucket, "--table", stack.table, *key])
        chain_out = capsys.readouterr().out
        history_code = main(["history", "--service", "payments", "--table", stack.table])
        history_out = capsys.readouterr().out

    raw = {d: (evidence / d / "manifest.json").read_bytes() for d in drills}
    manifests = {d: json.loads(raw[d]) for d in drills}
    links = [(manifests[d]["previous_drill_id"], manifests[d]["previous_manifest_digest"]) for d in drills]
    assert links == [(None, None), (drills[0], manifest_digest(raw[drills[0]])),
                     (drills[1], manifest_digest(raw[drills[1]]))]
    assert [records[d]["manifestDigest"] for d in drills] == [manifest_digest(raw[d]) for d in drills]
    assert (head["drillId"], head["digest"], head["sequence"]) == (drills[2], manifest_digest(raw[drills[2]]), 3)
    assert [manifests[d]["sequence"] for d in drills] == [1, 2, 3]
    for drill_id in drills:
        assert {"report.html", "report.md", "posture.json"} <= {p.name for p in (evidence / drill_id).iterdir()}
    posture = json.loads((evidence / drills[0] / "posture.json").read_text())
    assert [(p["region"], all(f["ok"] for f in p["findings"]), p["skipped"]) for p in posture] == [
        ("us-east-1", True, None), ("us-west-2", True, None)]

    local = verify_folder(evidence / drills[2], local_verifier())
    assert local.ok, local.problems
    assert local.drills == list(reversed(drills))
    assert remote_code == 0, remote_out
    assert f"chain: 3 drills checked ({' ← '.join(reversed(drills))})" in remote_out
    assert chain_code == 0, chain_out
    assert f"intact: chain of payments in s3://{stack.bucket}" in chain_out
    assert history_code == 0
    assert [line.split()[-1] for line in history_out.splitlines()[1:]] == list(reversed(drills))

    (evidence / drills[1] / "manifest.json").unlink()
    code = main(["verify", str(evidence / drills[2])])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith(f"TAMPERED: chain link {drills[2]} → {drills[1]}: {drills[1]}/manifest.json: missing")

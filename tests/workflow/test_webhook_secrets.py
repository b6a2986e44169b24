"""No secret leaves its box: a whole webhook drill, run as `livefire run` runs it, whose secret (two headers and a
query token, bound to the receiver's URL prefix) is echoed back by the receiver in every form (plain, JSON-escaped,
base64, percent-encoded, once across the 2,000th character and once past it). A grep of every S3 object
(decompressed too), every DynamoDB item, the execution history and the console output finds none of the values."""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
import yaml

from livefire.faults import webhook
from livefire_local.aws import REGION
from livefire_local.runner import run_drill
from livefire_local.sandbox.mesh import SandboxMesh
from tests.conftest import MESH_DIR, ROOT, sandbox_spec_document
from tests.tls import HttpsReceiver, Received, https_receiver

pytestmark = pytest.mark.slow
SECRET_NAME = "livefire/webhooks/runbook"
BEARER = 'Bearer lf-9Qe"7\\xZ-bearer-0c1d2e'
API_KEY = "lf-apikey-41f7a2b9c3"
TOKEN = "lf-query-token-77e0d5/+="
SECRETS = {"bearer": BEARER, "credential": BEARER.removeprefix("Bearer "), "api key": API_KEY, "token": TOKEN}


def forms(value: str) -> dict[str, str]:
    return {"plain": value, "json": json.dumps(value)[1:-1], "base64": base64.b64encode(value.encode()).decode(),
            "base64url": base64.urlsafe_b64encode(value.encode()).decode(), "percent": quote(value, safe="")}


NEEDLES = {f"{name} ({form})": text for name, value in SECRETS.items() for form, text in forms(value).items()}
# A cut before redaction would keep the start of a secret: its first characters (no character JSON escapes, so in
# any document) are looked for too.
NEEDLES |= {f"{name} (first 6 characters)": value[:6] for name, value in SECRETS.items() if name != "bearer"}


def echo(request: Received) -> tuple[int, bytes]:
    """Like a careless runbook service: every secret it got comes back, in every form, around the 2,000th
    character of the answer and after it."""
    token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
    got = [request.headers.get("Authorization", ""), request.headers.get("X-Api-Key", ""), token]
    echoes = " ".join(text for value in got for text in forms(value).values())
    head = json.dumps({"echo": echoes, "headers": request.headers})[:-1] + ', "pad": "'
    before_again = '", "again": "'
    pad = "." * (1_985 - len(head) - len(before_again))  # the second echo starts 15 characters before the cut
    return 200, f"{head}{pad}{before_again}{json.dumps(echoes)[1:-1]}\"}}".encode()


def drill_document(receiver: HttpsReceiver) -> dict[str, Any]:
    document = sandbox_spec_document("webhook-outage", phases={"baseline": "1s", "lead": "0s", "fault": "1s",
                                                               "recovery": "1s"}, objectives={})
    calls = {"url": f"{receiver.base()}/runbooks/start", "method": "POST", "headersSecret": SECRET_NAME,
             "body": {"reason": "livefire drill"}, "storeResponse": True}
    document["fault"]["webhook"] = {
        "inject": calls,
        "rollback": {**calls, "url": f"{receiver.base()}/runbooks/stop", "method": "DELETE", "body": None},
    }
    return document


def found(blob: bytes) -> list[str]:
    texts = [blob]
    if blob[:2] == b"\x1f\x8b":
        texts.append(gzip.decompress(blob))
    return sorted({name for name, needle in NEEDLES.items() for text in texts if needle.encode() in text})


def everything_stored(mesh: SandboxMesh) -> dict[str, bytes]:
    """Every S3 object, DynamoDB item and execution history of the local stack, by where it is."""
    s3, stored = boto3.client("s3", region_name=REGION), {}
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                stored[f"s3://{bucket['Name']}/{item['Key']}"] = body
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                stored[f"dynamodb:{table}:{item['pk']}/{item['sk']}"] = json.dumps(item).encode()
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            history = sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
            stored[f"history:{execution['name']}"] = json.dumps(history["events"], default=str).encode()
    return stored


def test_a_webhook_drill_keeps_no_secret_value_anywhere_it_writes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    webhook._secrets.cache_clear()
    with https_receiver(tmp_path, echo, monkeypatch) as receiver:
        spec = tmp_path / "webhook-secrets.yaml"
        spec.write_text(yaml.safe_dump(drill_document(receiver), sort_keys=False))
        stored: dict[str, bytes] = {}

        def create_the_secret(_mesh: SandboxMesh) -> None:
            boto3.client("secretsmanager", region_name=REGION).create_secret(Name=SECRET_NAME, SecretString=json.dumps({
                "headers": {"Authorization": BEARER, "X-Api-Key": API_KEY}, "query": {"token": TOKEN},
                "urlPrefixes": [f"{receiver.base()}/runbooks/"]}))

        console = io.StringIO()
        run = run_drill(spec, root=ROOT, evidence_root=tmp_path / "evidence", out=console, mesh_dir=MESH_DIR,
                        before_start=create_the_secret, after_end=lambda mesh: stored.update(everything_stored(mesh)))

    sent = [request for request in receiver.received if request.path.startswith("/runbooks/")]
    assert [request.method for request in sent] == ["POST", "DELETE"]  # the secret reached its own receiver
    assert all(r.headers["Authorization"] == BEARER and f"token={quote(TOKEN, safe='')}" in r.path for r in sent)
    assert run.evidence_dir is not None
    stored |= {f"evidence:{path}": path.read_bytes() for path in run.evidence_dir.rglob("*") if path.is_file()}
    stored["console"] = console.getvalue().encode()
    leaks = {where: names for where, blob in stored.items() if (names := found(blob))}
    assert leaks == {}
    assert len(stored) > 20
    fault_documents = [key for key in stored if key.endswith("-webhook.json")]
    assert fault_documents and b"[redacted]" in stored[fault_documents[0]]  # the answers were kept, redacted


PROBE_TOKEN = "lf-probe-token-5b8e1c"


def test_a_probe_urls_query_value_is_kept_only_in_the_executions_own_input_and_state(
        tmp_path: Path, write_spec: Callable[[dict[str, Any]], Path]) -> None:
    document = sandbox_spec_document()
    document["entrypoint"] += f"?token={PROBE_TOKEN}"
    spec = write_spec(document)
    stored: dict[str, bytes] = {}
    console = io.StringIO()

    run = run_drill(spec, root=ROOT, evidence_root=tmp_path / "evidence", out=console, mesh_dir=MESH_DIR,
                    after_end=lambda mesh: stored.update(everything_stored(mesh)))

    assert run.evidence_dir is not None and run.verdict == "PASS"  # the entrypoint was probed, token and all
    stored |= {f"evidence:{path}": path.read_bytes() for path in run.evidence_dir.rglob("*") if path.is_file()}
    stored["console"] = console.getvalue().encode()
    kept = sorted(where.split(":")[0] for where, blob in stored.items() if PROBE_TOKEN.encode() in blob)
    assert kept == ["history"]  # the input as given, and the plan the steps pass on: nowhere livefire writes
    assert b"token=[redacted]" in stored[f"s3://livefire-local-evidencebucket/{run_prefix(run)}spec.json"]


def run_prefix(run: Any) -> str:
    return f"drills/payments/{run.drill_id}/"

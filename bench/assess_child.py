"""One measured Assess invocation (run by bench/assess.py in a fresh process, so its peak memory is its own).

    python -m bench.assess_child LAYER FUNCTION_DIR CHUNK_DIR EVENT_STYLE

The layer directory is put first on sys.path, so the same child measures the current layer or the pre-change one
(a ``git archive`` copy). Inside moto: the bucket and table, the spec and the fault record are created, the chunk
files of CHUNK_DIR uploaded; then the peak-RSS mark is reset (/proc/self/clear_refs) and the real handler of
FUNCTION_DIR/app.py is invoked once. Prints one JSON line: wall and CPU time, RSS before the invocation and its peak,
RSS once imported (before any sample was uploaded), and the SHA-256 of the assessment.json it wrote.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

BUCKET, TABLE, REGION = "bench-evidence", "bench-drills", "us-east-1"
SPEC = Path(__file__).resolve().parent.parent / "drills" / "sandbox" / "active-passive.yaml"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith(f"{field}:"))
    return int(line.split()[1])


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak RSS (VmHWM) to the current RSS
        fh.write("5")


def _table(boto3: Any) -> None:
    keys = [("pk", "sk"), ("gsi1pk", "gsi1sk"), ("gsi2pk", "gsi2sk")]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for pair in keys for n in pair],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": f"gsi{i}", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}],
        } for i, (h, r) in enumerate(keys[1:], start=1)],
    )


def main(layer: str, function_dir: str, chunk_dir: str, style: str) -> None:
    sys.path.insert(0, layer)
    os.environ.update({"EVIDENCE_BUCKET": BUCKET, "DRILL_TABLE": TABLE, "AWS_DEFAULT_REGION": REGION,
                       "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    import boto3
    import yaml
    from moto import mock_aws

    with mock_aws():
        spec_module = importlib.import_module("livefire.spec")
        contracts = importlib.import_module("livefire.contracts")
        store_module = importlib.import_module("livefire.store")
        spec_doc = yaml.safe_load(SPEC.read_text())
        spec = spec_module.parse_spec(spec_doc)
        manifest = json.loads((Path(chunk_dir) / "drill.json").read_text())
        prefix = manifest["prefix"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        _table(boto3)
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}spec.json", Body=json.dumps(spec_doc).encode())
        loaded = importlib.util.spec_from_file_location("bench_assess_app", Path(function_dir) / "app.py")
        assert loaded is not None and loaded.loader is not None
        app = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(app)
        imported_kb = _status_kb("VmRSS")

        plan_doc = dict(manifest["plan"], specDigest=spec.digest())
        plan = contracts.Plan.model_validate(plan_doc)
        store = store_module.DrillStore(boto3.resource("dynamodb", region_name=REGION).Table(TABLE))
        fault = contracts.PlannedFault.model_validate(manifest["fault"])
        store.put_fault_pending(plan.drill_id, fault, snapshot_key=f"{prefix}faults/f.json", expires_at=0,
                                pending_at_ms=manifest["injected_ms"] - 5)
        store.mark_fault(plan.drill_id, fault.fault_id, "INJECTED", injected_at_ms=manifest["injected_ms"],
                         injection_answered_at_ms=manifest["injected_ms"] + 20)
        store.mark_fault(plan.drill_id, fault.fault_id, "RESTORED", restore_requested_at_ms=manifest["restored_ms"],
                         restored_at_ms=manifest["restored_ms"] + 20)
        keys = []
        for path in sorted(Path(chunk_dir).glob("*.jsonl.gz")):
            key = f"{prefix}samples/{path.name.replace('__', '/')}"
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes(), ContentEncoding="gzip")
            keys.append(key)
        event: dict[str, Any] = {"check": "recovery", "plan": plan_doc}
        if style == "keys":  # the pre-change contract: every chunk key in the state
            vantages = [v["name"] for v in plan_doc["vantages"]]
            event["observations"] = [
                {"vantage": v, "window": "drill", "startedAtMs": 0, "endedAtMs": 0, "markerKeys": [], "targets": [],
                 "sampleKeys": [k for k in keys if f"/samples/{v}/drill-" in k]} for v in vantages]
        context = type("Context", (), {"function_name": "bench-assess", "memory_limit_in_mb": 10240,
                                       "invoked_function_arn": "arn:aws:lambda:us-east-1:1:function:bench",
                                       "aws_request_id": "bench"})()
        before_kb = _status_kb("VmRSS")
        _reset_peak()
        started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        result = app.handler(event, context)
        wall = time.monotonic() - started
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
        peak_kb = _status_kb("VmHWM")
        written = s3.get_object(Bucket=BUCKET, Key=result["assessmentKey"])["Body"].read()
        chart = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}timeline.json").get("Contents", [])
        print(json.dumps({
            "wall_s": wall, "cpu_s": cpu_s, "before_mb": before_kb / 1024, "peak_mb": peak_kb / 1024,
            "imported_mb": imported_kb / 1024,
            "verdict": result["verdict"], "assessment_sha256": hashlib.sha256(written).hexdigest(),
            "assessment_bytes": len(written), "chart_bytes": chart[0]["Size"] if chart else 0, "event_bytes":
            len(json.dumps(event)),
        }))


if __name__ == "__main__":
    main(*sys.argv[1:5])

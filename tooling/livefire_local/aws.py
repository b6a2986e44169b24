"""AWS on this machine: moto in-process, with the stack's bucket, table and state machine built from
template.yaml (so local and cloud cannot drift) and the Lambda functions served by LocalLambdaServer."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from livefire_local.atomic_dynamodb import make_dynamodb_atomic
from livefire_local.lambda_server import Invocation, LocalLambdaServer
from livefire_local.signing import LocalSigningKey, install_in_moto
from livefire_local.template import ACCOUNT, LocalTemplate

REGION = "us-east-1"
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
}


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then put back exactly what was there."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class LocalStack:
    template: LocalTemplate
    lambdas: LocalLambdaServer
    state_machine_arn: str
    bucket: str
    table: str
    state_machines: dict[str, str] = field(default_factory=dict)  # every state machine of the template, by logical id

    @property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)

    @property
    def s3(self) -> Any:
        return boto3.client("s3", region_name=REGION)

    @property
    def dynamodb(self) -> Any:
        return boto3.resource("dynamodb", region_name=REGION)


def create_table(template: LocalTemplate, logical_id: str) -> str:
    props = template.resources[logical_id]["Properties"]
    name = template.physical_names[logical_id]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
    )
    return name


def create_bucket(template: LocalTemplate, logical_id: str) -> str:
    """The bucket as the template declares it: versioned, with Object Lock and its default retention if on."""
    props = template.resolve(template.resources[logical_id]["Properties"])
    name = template.physical_names[logical_id]
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(props.get("ObjectLockEnabled")))
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    lock = props.get("ObjectLockConfiguration")
    if lock:
        retention = lock["Rule"]["DefaultRetention"]
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": retention["Mode"], "Days": int(retention["Days"])}},
        })
    return name


def create_signing_keys(template: LocalTemplate) -> None:
    """The template's KMS keys, each backed by the local signing key (livefire_local/signing.py): the Evidence step
    signs through KMS as in AWS, and every local run signs with the one key kept outside the evidence folder."""
    kms = boto3.client("kms", region_name=REGION)
    for logical_id, resource in template.resources_of_type("AWS::KMS::Key").items():
        props = template.resolve(resource["Properties"])
        key_id = kms.create_key(KeySpec=props["KeySpec"], KeyUsage=props["KeyUsage"],
                                Description=props.get("Description", ""))["KeyMetadata"]["KeyId"]
        install_in_moto(key_id, LocalSigningKey.load_or_create(), ACCOUNT, REGION)
        template.physical_names[logical_id] = key_id


def _function_environment(template: LocalTemplate) -> dict[str, str]:
    """All functions run in this one process, so they must agree on their environment."""
    merged: dict[str, str] = {}
    for function in template.functions():
        for key, value in function.environment.items():
            if merged.setdefault(key, value) != value:
                raise ValueError(f"functions disagree on {key}; local mode runs them in one process")
    return merged


# Every function of a local drill is a thread of this one process, where on AWS each has a CPU and a heap of its own.
# Two things of the shared process stalled the probes (docs/architecture.md §10):
# - the garbage collector's full collections, which stop every thread while they scan the whole heap (moto's state,
#   every module loaded): 225-300 ms each, twice in the second after an injection;
# - the GIL: a probe whose answer has arrived waits while another function computes, up to Python's 5 ms switch
#   interval at a time.
# So while a local stack is up, what the heap held when it came up is frozen out of the collections, full
# collections come 10x less often, and threads switch every 0.5 ms. Measured on a chunked drill run alone
# (tests/workflow/test_probe_chunks.py): the drill window's p99 send lateness went from 113-128 ms to 5 ms, no base
# probe was sent more than 30 ms late, and the widest gap at a chunk boundary went from 128 ms to 109 ms.
LOCAL_SWITCH_INTERVAL_S = 0.0005
FULL_COLLECTION_EVERY = 100  # middle-generation collections (Python's default: 10)


@contextmanager
def shared_process_tuning(switch_interval_s: float = LOCAL_SWITCH_INTERVAL_S) -> Iterator[None]:
    """For the block: a thread switch interval of ``switch_interval_s``; the garbage collected, then every object
    alive frozen out of later collections (``gc.freeze``) and thawed after it; a full collection every 100 of the
    middle generation's, not 10."""
    before, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(switch_interval_s)
    gc.collect()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], FULL_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        sys.setswitchinterval(before)


@contextmanager
def local_stack(root: Path, *, extra_env: dict[str, str] | None = None,
                on_invoke: Callable[[Invocation, Any], None] | None = None) -> Iterator[LocalStack]:
    """moto + the stack's resources + the Lambda Invoke endpoint, for one drill (or one test)."""
    template = LocalTemplate.load(root, REGION)
    make_dynamodb_atomic()  # the functions run as threads of this process: conditional writes must stay atomic
    with patched_environ(_FAKE_CREDENTIALS), mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        buckets = [create_bucket(template, k) for k in template.resources_of_type("AWS::S3::Bucket")]
        tables = [create_table(template, k) for k in template.resources_of_type("AWS::DynamoDB::Table")]
        create_signing_keys(template)
        lambdas = LocalLambdaServer(template.functions(), REGION, on_invoke=on_invoke)
        endpoint = lambdas.start()
        env = {**_function_environment(template), **(extra_env or {}), "AWS_ENDPOINT_URL_LAMBDA": endpoint}
        # moto's ASL parser warns, on stderr, of each field it ignores (the campaign's ToleratedFailureCount): the
        # local runner's stderr is kept for livefire's own one-line messages; docs/campaigns.md says what it ignores.
        logging.getLogger("moto.stepfunctions.parser.asl.parse").setLevel(logging.ERROR)
        try:
            with patched_environ(env):
                machines = {logical_id: boto3.client("stepfunctions", region_name=REGION).create_state_machine(
                    name=template.physical_names[logical_id],
                    definition=template.state_machine_definition(logical_id),
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/livefire-local-state-machine",
                    type="STANDARD",
                )["stateMachineArn"] for logical_id in template.resources_of_type("AWS::Serverless::StateMachine")}
                with shared_process_tuning():
                    yield LocalStack(template, lambdas, machines["DrillStateMachine"], buckets[0], tables[0], machines)
        finally:
            lambdas.stop()

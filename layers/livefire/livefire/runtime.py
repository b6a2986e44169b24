"""What every step needs, built once per Lambda container: settings, AWS clients, the drill store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3

from livefire.config import Settings
from livefire.contracts import Plan
from livefire.errors import EvidenceError, SpecDigestMismatch
from livefire.evidence.signature import KmsSigner
from livefire.spec import DrillSpec, parse_spec
from livefire.store import DrillStore


@dataclass
class Runtime:
    settings: Settings
    _specs: dict[tuple[str, str], DrillSpec] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(settings=Settings.from_env())

    @cached_property
    def s3(self) -> Any:
        return boto3.client("s3")

    @cached_property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions")

    @cached_property
    def events(self) -> Any:
        return boto3.client("events")

    @cached_property
    def store(self) -> DrillStore:
        return DrillStore(boto3.resource("dynamodb").Table(self.settings.table))

    @cached_property
    def signer(self) -> KmsSigner:
        """The key that signs manifests (docs/architecture.md §8): only the Evidence step's role may use it."""
        if not self.settings.signing_key_id:
            raise EvidenceError("SIGNING_KEY_ID names no signing key: evidence is never left unsigned")
        return KmsSigner(boto3.client("kms"), self.settings.signing_key_id)

    def put_json(self, key: str, document: Any) -> bytes:
        body = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
        self.s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body, ContentType="application/json")
        return body

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read())

    def spec(self, plan: Plan) -> DrillSpec:
        """The drill's validated spec, read from its evidence copy once per container and checked against the
        digest its Plan recorded (``SpecDigestMismatch`` if the stored copy was changed since)."""
        cached = (plan.spec_key, plan.spec_digest)
        if cached not in self._specs:
            spec = parse_spec(self.get_json(plan.spec_key))
            if spec.digest() != plan.spec_digest:
                raise SpecDigestMismatch(
                    f"{plan.spec_key} has digest {spec.digest()}, not the {plan.spec_digest} the Plan recorded: "
                    "the stored spec was changed after planning"
                )
            self._specs[cached] = spec
        return self._specs[cached]

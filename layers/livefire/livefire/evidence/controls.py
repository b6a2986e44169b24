"""Controls evidenced: which audit controls a drill's findings support, by a mapping file (docs/architecture.md §8).

livefire ships ``controls.yaml`` beside this module; a deployment replaces it with the ``CONTROL_MAPPING``
variable: an ``s3://`` URI (the template's ``ControlMappingKey``, a key under ``config/`` in the evidence bucket,
which only the Evidence role may read) or a file path. The mapping names controls by identifier only; each control
lists the finding ids that evidence it. A control's status for one drill adds up its findings' statuses like the
verdict does: FAIL if any failed, else INCONCLUSIVE if any was not judged, else PASS; NOT_EVIDENCED when the
drill has none of its findings (its pattern or objectives do not measure them, or it was not judged).
"""

from __future__ import annotations

import os
from importlib.resources import files
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from livefire.assessment import Assessment
from livefire.assessment.model import Status
from livefire.errors import EvidenceError

MAPPING_VARIABLE = "CONTROL_MAPPING"
SHIPPED_MAPPING = "controls.yaml"
MAX_MAPPING_BYTES = 256 * 1024
ControlStatus = Literal["PASS", "FAIL", "INCONCLUSIVE", "NOT_EVIDENCED"]


class MappedControl(BaseModel):
    """One control of the mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control: str = Field(min_length=1, max_length=100, description="the control's identifier, e.g. 'DORA Art. 24', "
                                                                    "'NIST SP 800-53 CP-4' (no text of the standard)")
    findings: list[str] = Field(min_length=1, description="the finding ids (assessment.json findings[].id) that "
                                                          "evidence it")


class ControlMapping(BaseModel):
    """The mapping file: ``controls: [{control, findings}]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    controls: list[MappedControl] = Field(min_length=1, description="the controls, in report order")


class EvidencedFinding(BaseModel):
    """One finding of the drill that evidences a control."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the finding's id")
    status: Status = Field(description="its status in this drill")


class ControlEvidence(BaseModel):
    """One control, the findings of this drill that evidence it, and what they add up to."""

    model_config = ConfigDict(frozen=True)

    control: str = Field(description="the control's identifier")
    status: ControlStatus = Field(description="FAIL if a finding failed, else INCONCLUSIVE if one was not judged, "
                                              "else PASS; NOT_EVIDENCED when the drill has none of its findings")
    findings: list[EvidencedFinding] = Field(description="the drill's findings the mapping names for it, in "
                                                         "mapping order")


class ObjectReader(Protocol):
    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]: ...  # noqa: N803 (boto3's names)


def parse_mapping(data: bytes, source: str) -> ControlMapping:
    """The mapping from YAML bytes; EvidenceError naming ``source`` when it is not a valid mapping."""
    if len(data) > MAX_MAPPING_BYTES:
        raise EvidenceError(f"control mapping {source}: over {MAX_MAPPING_BYTES} bytes")
    try:
        return ControlMapping.model_validate(yaml.safe_load(data))
    except (yaml.YAMLError, ValidationError) as exc:
        problem = str(exc).splitlines()[0] if isinstance(exc, yaml.YAMLError) else "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(mapping)'}: {error['msg']}" for error in exc.errors())
        raise EvidenceError(f"control mapping {source}: {problem}") from None


def load_mapping(s3: ObjectReader | None = None, source: str | None = None) -> ControlMapping:
    """The deployment's mapping (``source``, default the ``CONTROL_MAPPING`` variable), else the shipped one."""
    source = os.environ.get(MAPPING_VARIABLE, "") if source is None else source
    if not source:
        return parse_mapping((files("livefire.evidence") / SHIPPED_MAPPING).read_bytes(), SHIPPED_MAPPING)
    if source.startswith("s3://"):
        parts = urlsplit(source)
        if s3 is None or not parts.netloc or not parts.path.strip("/"):
            raise EvidenceError(f"control mapping {source}: needs s3://BUCKET/KEY and an S3 client")
        try:
            body = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read(MAX_MAPPING_BYTES + 1)
        except Exception as exc:  # botocore's errors: the step fails naming the mapping, never a silent default
            raise EvidenceError(f"control mapping {source}: {type(exc).__name__}: {exc}"[:500]) from None
        return parse_mapping(body, source)
    try:
        with open(source, "rb") as fh:
            return parse_mapping(fh.read(MAX_MAPPING_BYTES + 1), source)
    except OSError as exc:
        raise EvidenceError(f"control mapping {source}: {exc.strerror or exc}") from None


def controls_evidenced(mapping: ControlMapping, assessment: Assessment | None) -> list[ControlEvidence]:
    """Each control of the mapping with the drill's findings that evidence it and their status."""
    by_id = {f.id: f for f in assessment.findings} if assessment is not None else {}
    evidenced = []
    for mapped in mapping.controls:
        found = [EvidencedFinding(id=i, status=by_id[i].status) for i in dict.fromkeys(mapped.findings) if i in by_id]
        statuses = {f.status for f in found}
        status: ControlStatus = (
            "NOT_EVIDENCED" if not found else "FAIL" if "FAIL" in statuses
            else "INCONCLUSIVE" if "INCONCLUSIVE" in statuses else "PASS"
        )
        evidenced.append(ControlEvidence(control=mapped.control, status=status, findings=found))
    return evidenced

"""The ``dataChecks`` section: markers written in the primary region and read back in every other region, so a
drill measures replication lag and the data a failover loses (the RPO), not only the downtime
(docs/architecture.md §4, §6, §7).

Two kinds: ``http`` (the tiny marker contract of the README: ``POST`` a marker to a write URL, ``GET`` the newest
marker each region's read URL sees, ``DELETE`` the drill's markers) and ``dynamodb`` (marker items in a DynamoDB
global table, put in the primary region and read back with strongly consistent reads in each replica region).
The markers never touch the user's data: every key starts with ``livefire-marker/<drill id>/<check name>/``.
With ``standbyWrites`` a check also writes markers in every read region (under ``.../standby-<region>/``) and
looks for each in the primary, so a drill sees whether what a standby took while it served survives the failback.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from livefire.spec.aws import AwsRegion
from livefire.spec.base import Slug, SpecModel
from livefire.spec.durations import AS_DURATION, MINUTE, MS, SECOND, bounded
from livefire.spec.urls import HttpUrl

MAX_DATA_CHECKS = 4
MARKER_PREFIX = "livefire-marker"
MarkerInterval = Annotated[float, bounded(50 * MS, MINUTE), AS_DURATION]
MarkerTimeout = Annotated[float, bounded(10 * MS, 30 * SECOND), AS_DURATION]
DataCheckKind = Literal["http", "dynamodb"]
# A DynamoDB table name: 3 to 255 of letters, digits, underscore, hyphen and dot.
TableName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,255}$")]


class HttpMarkers(SpecModel):
    """The ``http`` kind: where markers are written (in the primary region) and read (one URL per other region)."""

    write_url: HttpUrl = Field(description="POST a marker here (the primary region's store); DELETE cleans up")
    read_urls: Annotated[dict[str, HttpUrl], Field(min_length=1)] = Field(
        description="region name -> the URL that answers GET with the newest marker that region's store holds")

    @model_validator(mode="after")
    def _no_query(self) -> HttpMarkers:
        """The URLs are kept in the evidence (the cleanup record's document): they may carry no secret."""
        named = [("writeUrl", self.write_url)] + [(f"readUrls.{r}", url) for r, url in self.read_urls.items()]
        for path, url in named:
            if urlsplit(url).query:
                raise ValueError(f"{path}: a marker URL takes no query string (it is kept in the evidence)")
        return self


class DynamoMarkers(SpecModel):
    """The ``dynamodb`` kind: a global table, its primary region and the replica regions read back."""

    table: TableName = Field(description="the global table's name (the deployment must allow it: MarkerTables)")
    primary_region: AwsRegion = Field(description="where markers are put")
    replica_regions: Annotated[list[AwsRegion], Field(min_length=1, max_length=8)] = Field(
        description="where markers are read back with strongly consistent reads")

    @model_validator(mode="after")
    def _replicas_are_other_regions(self) -> DynamoMarkers:
        if self.primary_region in self.replica_regions:
            raise ValueError(f"replicaRegions: {self.primary_region!r} is the primaryRegion")
        if len(set(self.replica_regions)) != len(self.replica_regions):
            raise ValueError("replicaRegions: regions must be unique")
        return self


class DataCheck(SpecModel):
    name: Slug = Field(description="names the check in findings, reports and marker keys")
    kind: DataCheckKind
    interval: MarkerInterval = Field(default=0.5, description="one marker written (and each region read) this often")
    timeout: MarkerTimeout = Field(default=1.0, description="how long a write or read may take")
    standby_writes: bool = Field(
        default=False, description="also write a marker in every read region each interval (http: POST to its "
                                   "read URL; dynamodb: put in its replica) and look for each in the primary (http: "
                                   "GET <writeUrl>?prefix=P&seq=N): write loss on failback")
    http: HttpMarkers | None = None
    dynamodb: DynamoMarkers | None = None

    @model_validator(mode="after")
    def _one_section_of_its_kind(self) -> DataCheck:
        for section in ("http", "dynamodb"):
            if section != self.kind and getattr(self, section) is not None:
                raise ValueError(f"{section}: only valid with kind {section}")
        if getattr(self, self.kind) is None:
            raise ValueError(f"{self.kind}: kind {self.kind} needs a {self.kind} section")
        return self

    @property
    def read_regions(self) -> list[str]:
        """The regions read back, in the order the spec gives them."""
        if self.http is not None:
            return list(self.http.read_urls)
        assert self.dynamodb is not None
        return list(self.dynamodb.replica_regions)

    @property
    def write_region(self) -> str | None:
        """The region markers are written in (None for ``http``: the spec's primary region)."""
        return self.dynamodb.primary_region if self.dynamodb is not None else None


def marker_prefix(drill_id: str, check: str | None = None) -> str:
    """The key prefix of a drill's markers (of one check, when named): ``livefire-marker/<drill>/<check>/``."""
    return f"{MARKER_PREFIX}/{drill_id}/" + (f"{check}/" if check else "")


def standby_prefix(prefix: str, region: str) -> str:
    """The key prefix of the markers a check writes in ``region`` (``standbyWrites``), under the check's own."""
    return f"{prefix}standby-{region}/"


def data_check_problems(checks: list[DataCheck], regions: dict[str, str]) -> str | None:
    """The first cross-section problem of ``dataChecks`` (names unique, regions are the spec's, the writer is in
    the primary region and no region reads its own writes), as ``path: problem``; None when there is none.
    ``regions`` maps each region name of the spec to its role."""
    names = [check.name for check in checks]
    if len(names) != len(set(names)):
        return "dataChecks: check names must be unique"
    primary = next((name for name, role in regions.items() if role == "primary"), None)
    for index, check in enumerate(checks):
        path = f"dataChecks.{index}.{check.kind}"
        if primary is None:
            return f"dataChecks.{index}: a data check needs a region with role primary to write in"
        if check.write_region is not None and check.write_region != primary:
            return f"{path}.primaryRegion: {check.write_region!r} is not the spec's primary region {primary!r}"
        field = "readUrls" if check.kind == "http" else "replicaRegions"
        for region in check.read_regions:
            if region not in regions:
                return f"{path}.{field}: {region[:40]!r} is not one of the spec's regions"
            if region == primary:
                return f"{path}.{field}: {region!r} is the primary region, where markers are written"
    return None

"""fault.kind fis: an AWS Fault Injection Service experiment, started by Inject and stopped by every rollback path.

The fault's document (``faults/<fault-id>-fis.json``) is written, and the PENDING record exists, before
StartExperiment; the experiment id goes on the record (through the lifecycle's checkpoint) as soon as FIS answers.
The clientToken is the drill and fault id, so a retried Inject gets the same experiment, never a second one; the
experiment is tagged with both ids. Each state the experiment is seen in is kept with its bracket: ``notBeforeMs``
(the send instant of the request before the one that saw it, when the old state still held) and ``seenAtMs`` (the
answer that showed it). The injection bracket is that of ``running``. Restore: stop the experiment if it has not
ended (a record with no id yet finds it by its tags) and wait, bounded, for a terminal state; its bracket is
[stop request sent, the experiment's end]. The document keeps every state seen, the actions, and whether FIS's own
stop conditions ended the experiment (it stopped before livefire asked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from livefire.clock import now_ms
from livefire.contracts import PlannedFault
from livefire.errors import FaultInjectionFailed, RollbackFailed
from livefire.faults.driver import Applied, Bracket, Checkpoint, DryRun, FaultTarget, Restored
from livefire.spec import Fault

POLL_S = 0.2
# States in which the experiment may still act on the targets: a rollback must stop it.
ACTIVE = frozenset({"pending", "initiating", "running"})
TERMINAL = frozenset({"completed", "stopped", "failed", "cancelled"})
TAG_DRILL, TAG_FAULT = "livefire:drill-id", "livefire:fault-id"
# Errors of StartExperiment after which no experiment can exist (the request was refused, not lost).
_REFUSED = frozenset({"ValidationException", "ResourceNotFoundException", "ServiceQuotaExceededException",
                      "AccessDeniedException", "ConflictException"})
DRY_RUN_DETAIL = "dry run: nothing was started"


@cache
def _client(region: str) -> Any:
    return boto3.client("fis", region_name=region)


def client_token(drill_id: str, fault_id: str) -> str:
    return f"livefire/{drill_id}/{fault_id}"


def new_document(drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
    """What Inject writes before anything starts: enough for any rollback path to find and stop the experiment."""
    assert fault.fis is not None  # kind fis (DrillSpec validation)
    return {
        "kind": "fis", "drillId": drill_id, "faultId": planned.fault_id,
        "experimentTemplateId": fault.fis.experiment_template_id, "region": fault.fis.region or fault.region,
        "clientToken": client_token(drill_id, planned.fault_id),
        "startTimeoutS": fault.fis.start_timeout, "stopTimeoutS": fault.fis.stop_timeout,
        "experimentId": None, "startError": None, "states": [], "stopRequestedAtMs": None, "stopRequestedBy": None,
        "stopConditionFired": None, "actions": None, "experiment": None,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


class _Watch:
    """The fault's document and the FIS calls that update it; every state change is appended to ``states``."""

    def __init__(self, target: FaultTarget) -> None:
        self.target = target
        self.doc = target.document.data
        self.fis = _client(str(self.doc["region"]))
        self._last_poll_ms: int | None = None
        self._last_sent_ms: int | None = None

    @property
    def experiment_id(self) -> str | None:
        value = self.doc.get("experimentId")
        return str(value) if value else None

    @property
    def status(self) -> str | None:
        states = self.doc["states"]
        return str(states[-1]["status"]) if states else None

    def save(self) -> None:
        self.target.document.save()

    def observe(self, experiment: dict[str, Any], sent_ms: int) -> int:
        """Record the experiment's state as the request sent at ``sent_ms`` answered it; the answer's time."""
        seen_ms = now_ms()
        state = experiment.get("state") or {}
        status = str(state.get("status", "unknown"))
        if status != self.status:
            self.doc["states"].append({
                "status": status, "reason": state.get("reason"), "error": _plain(state.get("error")),
                "seenAtMs": seen_ms, "previousPollAtMs": self._last_poll_ms,
                "notBeforeMs": self._last_sent_ms if self._last_sent_ms is not None else sent_ms,
            })
        self._last_poll_ms, self._last_sent_ms = seen_ms, sent_ms
        self.doc["experiment"] = _plain(experiment)
        self.doc["actions"] = {
            name: {"actionId": action.get("actionId"), "state": _plain(action.get("state")),
                   "startTime": _plain(action.get("startTime")), "endTime": _plain(action.get("endTime"))}
            for name, action in (experiment.get("actions") or {}).items()
        }
        return seen_ms

    def bracket(self) -> Bracket:
        """When the experiment entered its current state: [notBeforeMs, seenAtMs]."""
        state = self.doc["states"][-1]
        return Bracket(int(state["notBeforeMs"]), int(state["seenAtMs"]))

    def poll(self) -> int:
        assert self.experiment_id is not None
        sent_ms = now_ms()
        return self.observe(self.fis.get_experiment(id=self.experiment_id)["experiment"], sent_ms)

    def wait(self, done: Callable[[str], bool], timeout_s: float) -> int | None:
        """Poll (every POLL_S, at most ``timeout_s``) until ``done(status)``; the time it was seen, or None."""
        give_up = time.monotonic() + timeout_s
        while True:
            seen_ms = self.poll()
            if self.status is not None and done(self.status):
                return seen_ms
            if time.monotonic() >= give_up:
                return None
            time.sleep(POLL_S)

    def find_by_tags(self) -> str | None:
        """The experiment this fault started, by its tags (an Inject that died before it stored the id)."""
        pages = self.fis.get_paginator("list_experiments").paginate(
            experimentTemplateId=str(self.doc["experimentTemplateId"]))
        for page in pages:
            for experiment in page.get("experiments", []):
                tags = experiment.get("tags") or {}
                if tags.get(TAG_DRILL) == self.target.drill_id and tags.get(TAG_FAULT) == self.target.planned.fault_id:
                    return str(experiment["id"])
        return None


# ---------------------------------------------------------------- inject


def _start(watch: _Watch) -> None:
    """StartExperiment; the experiment id and first state go into the document (saved)."""
    doc, target = watch.doc, watch.target
    sent_ms = now_ms()
    try:
        started = watch.fis.start_experiment(
            clientToken=doc["clientToken"], experimentTemplateId=doc["experimentTemplateId"],
            tags={TAG_DRILL: target.drill_id, TAG_FAULT: target.planned.fault_id},
        )["experiment"]
    except (ClientError, BotoCoreError) as exc:
        refused = isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _REFUSED
        doc["startError"] = {"error": _error(exc), "refused": refused, "atMs": now_ms()}
        watch.save()
        raise FaultInjectionFailed(f"{target.planned.fault_id}: StartExperiment of template "
                                   f"{doc['experimentTemplateId']} failed: {_error(exc)}") from None
    doc["experimentId"] = started["id"]
    watch.observe(started, sent_ms)
    watch.save()


# ---------------------------------------------------------------- restore


def _stop(watch: _Watch, actor: str) -> tuple[bool, int]:
    """Stop the experiment unless it already ended, then wait for a terminal state.
    (whether this call stopped it, when it was seen ended in epoch ms)."""
    doc = watch.doc
    watch.poll()
    stopped = False
    if watch.status in ACTIVE:
        assert watch.experiment_id is not None
        doc["stopRequestedAtMs"], doc["stopRequestedBy"] = now_ms(), actor
        watch.observe(watch.fis.stop_experiment(id=watch.experiment_id)["experiment"], doc["stopRequestedAtMs"])
        stopped = True
    ended_ms = watch.wait(lambda status: status in TERMINAL, float(doc["stopTimeoutS"]))
    if ended_ms is None:
        raise RollbackFailed(f"{watch.target.planned.fault_id}: experiment {watch.experiment_id} was still "
                             f"{watch.status} {doc['stopTimeoutS']:g} s after it was asked to stop")
    doc["stopConditionFired"] = watch.status == "stopped" and not any(
        s["status"] == "stopping" for s in doc["states"]) and doc["stopRequestedAtMs"] is None
    return stopped, ended_ms


def _end_time_ms(watch: _Watch, seen_ms: int) -> int:
    """When the experiment ended: FIS's endTime when it gives one, else when livefire saw it ended."""
    end = (watch.doc.get("experiment") or {}).get("endTime")
    try:
        return int(datetime.fromisoformat(end).timestamp() * 1000) if isinstance(end, str) else seen_ms
    except ValueError:
        return seen_ms


class FisDriver:
    document_name = "fis"

    def describe(self, drill_id: str, planned: PlannedFault, fault: Fault) -> dict[str, Any]:
        return new_document(drill_id, planned, fault)

    def apply(self, target: FaultTarget, fault: Fault, checkpoint: Checkpoint) -> Applied:
        """Start the experiment and wait until it runs; the injection bracket is that of ``running``."""
        watch = _Watch(target)
        _start(watch)
        assert watch.experiment_id is not None
        checkpoint(watch.experiment_id)
        try:
            running_ms = watch.wait(lambda status: status == "running" or status in TERMINAL,
                                    float(watch.doc["startTimeoutS"]))
        finally:
            watch.save()
        if running_ms is None or watch.status != "running":
            what = (f"was still {watch.status} after {watch.doc['startTimeoutS']:g} s" if running_ms is None
                    else f"ended {watch.status} before it ran ({watch.doc['states'][-1].get('reason')})")
            raise FaultInjectionFailed(f"{target.planned.fault_id}: experiment {watch.experiment_id} {what}; "
                                       "the rollback stops it")
        return Applied(bracket=watch.bracket(), detail=f"experiment {watch.experiment_id} running",
                       external_id=watch.experiment_id)

    def restore(self, target: FaultTarget, actor: str) -> Restored:
        """End the fault's experiment (idempotent); ``wrote``: whether this call stopped a running experiment."""
        watch = _Watch(target)
        doc = watch.doc
        try:
            refused = bool((doc.get("startError") or {}).get("refused"))
            if watch.experiment_id is None:
                doc["experimentId"] = target.external_id or (None if refused else watch.find_by_tags())
            if watch.experiment_id is None:
                detail = ("StartExperiment was refused: no experiment ran" if refused
                          else "no experiment of this fault was started: nothing to stop")
                return Restored(status="RESTORED", wrote=False, detail=detail)
            stopped, seen_ms = _stop(watch, actor)
        except ClientError as exc:
            raise RollbackFailed(f"{target.planned.fault_id}: {_error(exc)}") from None
        finally:
            watch.save()
        ended_ms = max(_end_time_ms(watch, seen_ms), target.injected_at_ms or 0)
        requested_ms = min(doc["stopRequestedAtMs"], ended_ms) if stopped else ended_ms
        how = ("stopped by livefire" if stopped else
               "stopped by a FIS stop condition (or by hand) before livefire asked" if doc["stopConditionFired"]
               else f"{watch.status} before livefire asked")
        detail = f"experiment {watch.experiment_id} {watch.status}: {how}"
        return Restored(status="RESTORED", wrote=stopped, detail=detail, bracket=Bracket(requested_ms, ended_ms),
                        external_id=watch.experiment_id)

    def verify(self, drill_id: str, planned: PlannedFault, fault: Fault, expires_at: int) -> DryRun:
        """The experiment template exists and this function may read it (GetExperimentTemplate); nothing starts."""
        doc = new_document(drill_id, planned, fault)
        template, region = doc["experimentTemplateId"], doc["region"]
        try:
            _client(str(region)).get_experiment_template(id=template)
        except (ClientError, BotoCoreError) as exc:
            problem = f"experiment template {template} cannot be read in {region}: {_error(exc)}"
            return DryRun(detail=f"{DRY_RUN_DETAIL}; the fault would fail: {problem}", problems=[problem],
                          document=doc)
        return DryRun(detail=f"{DRY_RUN_DETAIL}; experiment template {template} exists in {region}", problems=[],
                      document=doc)

    def in_flight(self, target: FaultTarget) -> str:
        return f"experiment {target.external_id} was being started"

"""fault.kind fis: an AWS Fault Injection Service experiment, started by Inject and stopped by every rollback path.

Inject: the fault's document (``faults/<fault-id>-fis.json``) and the PENDING record exist before StartExperiment;
the experiment id is stored on the record as soon as FIS answers. The clientToken is the drill and fault id, so a
retried Inject gets the same experiment, never a second one; the experiment is tagged with both ids. The
injection instant is the first poll that sees it ``running``. An Inject whose record a rollback closed meanwhile
stops its own experiment. Restore: stop the experiment if it has not ended (a record with no id yet finds it by
its tags) and wait, bounded, for a terminal state. The document keeps every state seen, the actions, and whether
FIS's own stop conditions ended the experiment (it stopped before livefire asked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from livefire.contracts import FaultState, PlannedFault
from livefire.errors import FaultInjectionFailed, RollbackFailed
from livefire.runtime import Runtime
from livefire.spec import Fault
from livefire.store import FaultRecord

POLL_S = 0.2
# States in which the experiment may still act on the targets: a rollback must stop it.
ACTIVE = frozenset({"pending", "initiating", "running"})
TERMINAL = frozenset({"completed", "stopped", "failed", "cancelled"})
TAG_DRILL, TAG_FAULT = "livefire:drill-id", "livefire:fault-id"
# Errors of StartExperiment after which no experiment can exist (the request was refused, not lost).
_REFUSED = frozenset({"ValidationException", "ResourceNotFoundException", "ServiceQuotaExceededException",
                      "AccessDeniedException", "ConflictException"})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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

    def __init__(self, record: FaultRecord, runtime: Runtime) -> None:
        self.record = record
        self.runtime = runtime
        self.doc: dict[str, Any] = runtime.get_json(record.snapshot_key)
        self.fis = _client(str(self.doc["region"]))
        self._last_poll_ms: int | None = None

    @property
    def experiment_id(self) -> str | None:
        value = self.doc.get("experimentId")
        return str(value) if value else None

    @property
    def status(self) -> str | None:
        states = self.doc["states"]
        return str(states[-1]["status"]) if states else None

    def save(self) -> None:
        self.runtime.put_json(self.record.snapshot_key, self.doc)

    def observe(self, experiment: dict[str, Any]) -> int:
        """Record the experiment's state as seen now; the time it was seen (epoch ms)."""
        seen_ms = _now_ms()
        state = experiment.get("state") or {}
        status = str(state.get("status", "unknown"))
        if status != self.status:
            self.doc["states"].append({
                "status": status, "reason": state.get("reason"), "error": _plain(state.get("error")),
                "seenAtMs": seen_ms, "previousPollAtMs": self._last_poll_ms,
            })
        self._last_poll_ms = seen_ms
        self.doc["experiment"] = _plain(experiment)
        self.doc["actions"] = {
            name: {"actionId": action.get("actionId"), "state": _plain(action.get("state")),
                   "startTime": _plain(action.get("startTime")), "endTime": _plain(action.get("endTime"))}
            for name, action in (experiment.get("actions") or {}).items()
        }
        return seen_ms

    def poll(self) -> int:
        assert self.experiment_id is not None
        return self.observe(self.fis.get_experiment(id=self.experiment_id)["experiment"])

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
                if tags.get(TAG_DRILL) == self.record.drill_id and tags.get(TAG_FAULT) == self.record.fault_id:
                    return str(experiment["id"])
        return None


# ---------------------------------------------------------------- inject


def inject(record: FaultRecord, runtime: Runtime) -> FaultState:
    """Start the experiment and wait until it runs; the injection instant is when ``running`` is first seen."""
    watch = _Watch(record, runtime)
    store, doc = runtime.store, watch.doc
    try:
        started = watch.fis.start_experiment(
            clientToken=doc["clientToken"], experimentTemplateId=doc["experimentTemplateId"],
            tags={TAG_DRILL: record.drill_id, TAG_FAULT: record.fault_id},
        )["experiment"]
    except (ClientError, BotoCoreError) as exc:
        refused = isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _REFUSED
        doc["startError"] = {"error": _error(exc), "refused": refused, "atMs": _now_ms()}
        watch.save()
        raise FaultInjectionFailed(f"{record.fault_id}: StartExperiment of template {doc['experimentTemplateId']} "
                                   f"failed: {_error(exc)}") from None
    doc["experimentId"] = started["id"]
    watch.observe(started)
    if not store.mark_fault(record.drill_id, record.fault_id, "PENDING", expect="PENDING", externalId=started["id"]):
        _undo_late_start(watch)
    watch.save()
    try:
        running_ms = watch.wait(lambda status: status == "running" or status in TERMINAL, float(doc["startTimeoutS"]))
    finally:
        watch.save()
    if running_ms is None or watch.status != "running":
        what = (f"was still {watch.status} after {doc['startTimeoutS']:g} s" if running_ms is None
                else f"ended {watch.status} before it ran ({doc['states'][-1].get('reason')})")
        raise FaultInjectionFailed(f"{record.fault_id}: experiment {watch.experiment_id} {what}; "
                                   "the rollback stops it")
    if not store.mark_fault(record.drill_id, record.fault_id, "INJECTED", expect="PENDING", injectedAtMs=running_ms):
        _undo_late_start(watch)
    return FaultState(fault_id=record.fault_id, status="INJECTED", injected_at_ms=running_ms,
                      snapshot_key=record.snapshot_key, detail=f"experiment {watch.experiment_id} running")


def _undo_late_start(watch: _Watch) -> None:
    """A rollback closed the record while the experiment was being started: stop it ourselves."""
    record, store = watch.record, watch.runtime.store
    late = f"{record.fault_id}: the drill was rolled back while experiment {watch.experiment_id} was being started"
    try:
        _stop(watch, "inject")
    except (RollbackFailed, ClientError, BotoCoreError) as exc:  # it may be live and nothing else will see it
        store.reopen_fault(record, f"{late}; stopping it failed: {_error(exc)}")
        store.mark_fault(record.drill_id, record.fault_id, "FAILED", externalId=watch.experiment_id)
        raise RollbackFailed(f"{late}; stopping it failed: {_error(exc)}") from None
    finally:
        watch.save()
    store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=_now_ms(), restoredBy="inject",
                     externalId=watch.experiment_id, detail=f"{late}; it was stopped")
    raise FaultInjectionFailed(f"{late}; it was stopped")


# ---------------------------------------------------------------- restore


def _stop(watch: _Watch, actor: str) -> tuple[bool, int]:
    """Stop the experiment unless it already ended, then wait for a terminal state.
    (whether this call stopped it, when it was seen ended in epoch ms)."""
    doc = watch.doc
    watch.poll()
    stopped = False
    if watch.status in ACTIVE:
        assert watch.experiment_id is not None
        doc["stopRequestedAtMs"], doc["stopRequestedBy"] = _now_ms(), actor
        watch.observe(watch.fis.stop_experiment(id=watch.experiment_id)["experiment"])
        stopped = True
    ended_ms = watch.wait(lambda status: status in TERMINAL, float(doc["stopTimeoutS"]))
    if ended_ms is None:
        raise RollbackFailed(f"{watch.record.fault_id}: experiment {watch.experiment_id} was still {watch.status} "
                             f"{doc['stopTimeoutS']:g} s after it was asked to stop")
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


def restore(record: FaultRecord, runtime: Runtime, actor: str) -> tuple[FaultState, bool]:
    """End the fault's experiment (idempotent): (its state, whether this call stopped a running experiment)."""
    watch = _Watch(record, runtime)
    store, doc = runtime.store, watch.doc
    try:
        if watch.experiment_id is None:
            refused = (doc.get("startError") or {}).get("refused")
            doc["experimentId"] = record.external_id or (None if refused else watch.find_by_tags())
        if watch.experiment_id is None:
            detail = ("StartExperiment was refused: no experiment ran" if (doc.get("startError") or {}).get("refused")
                      else "no experiment of this fault was started: nothing to stop")
            restored_ms, stopped = _now_ms(), False
        else:
            stopped, seen_ms = _stop(watch, actor)
            restored_ms = max(_end_time_ms(watch, seen_ms), record.injected_at_ms or 0)
            how = ("stopped by livefire" if stopped else
                   "stopped by a FIS stop condition (or by hand) before livefire asked" if doc["stopConditionFired"]
                   else f"{watch.status} before livefire asked")
            detail = f"experiment {watch.experiment_id} {watch.status}: {how}"
    except ClientError as exc:
        raise RollbackFailed(f"{record.fault_id}: {_error(exc)}") from None
    finally:
        watch.save()
    store.mark_fault(record.drill_id, record.fault_id, "RESTORED", restoredAtMs=restored_ms, restoredBy=actor,
                     externalId=watch.experiment_id, detail=detail)
    state = FaultState(fault_id=record.fault_id, status="RESTORED", injected_at_ms=record.injected_at_ms,
                       restored_at_ms=restored_ms, snapshot_key=record.snapshot_key, detail=detail)
    return state, stopped

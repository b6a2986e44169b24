"""A refused restore never reads PASS and says first how to restore by hand (livefire/faults/refusal.py)."""

from __future__ import annotations

from livefire.faults.refusal import refusal_lines, refused, verdict_with_refusals
from livefire.records import FaultRecord, RestoreRefusal
from tests.evidence_data import planned_fault

REFUSAL = RestoreRefusal(target="VirtualService payments/payments on eks:payments-use1", differs=["spec.http"],
                         command="kubectl -n payments patch virtualservices.networking.istio.io payments --type=json "
                                 "-p '[]'")


def record(status: str, refusal: RestoreRefusal | None = None) -> FaultRecord:
    return FaultRecord.model_validate({"drill_id": "d-1", "fault_id": "f-1", "status": status,
                                       "planned": planned_fault(), "snapshot_key": "k", "expires_at": 1,
                                       "refusal": refusal})


def test_a_refused_restore_turns_any_verdict_into_restore_refused() -> None:
    faults = [record("RESTORED"), record("CONFLICT", REFUSAL)]

    assert [verdict_with_refusals(v, faults) for v in ("PASS", "FAIL", "ERROR")] == ["RESTORE_REFUSED"] * 3


def test_without_a_refused_restore_the_verdict_stands() -> None:
    assert verdict_with_refusals("PASS", [record("RESTORED"), record("SKIPPED")]) == "PASS"
    assert refused([record("RESTORED")]) == [] and refusal_lines([]) == []


def test_the_first_line_names_the_object_what_differs_and_the_command() -> None:
    [line] = refusal_lines([record("CONFLICT", REFUSAL)])

    assert line == ("RESTORE REFUSED: VirtualService payments/payments on eks:payments-use1 was changed by someone "
                    "else during the drill (spec.http differs from the snapshot) and was left as it is; restore it "
                    f"by hand: {REFUSAL.command}")

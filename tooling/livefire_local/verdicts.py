"""How a drill's verdict becomes the exit code of `livefire run` and `livefire start`."""

from __future__ import annotations

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
FAILING_VERDICTS = frozenset({"FAIL", "INCONCLUSIVE", "NOT_STEADY", "ABORTED"})


def exit_code_for(verdict: str | None) -> int:
    """0 PASS; 1 a drill that ran and did not pass; 2 no judgement (an error, or no verdict at all)."""
    if verdict == "PASS":
        return EXIT_PASS
    if verdict in FAILING_VERDICTS:
        return EXIT_FAIL
    return EXIT_ERROR

"""Named errors. The state machine catches them by class name (the Lambda `errorType`)."""


class LivefireError(Exception):
    """Base class of every error livefire raises on purpose."""


class InvalidDrillSpec(LivefireError):
    """The drill spec is malformed; the message names the field path and the problem."""


class GuardrailViolation(LivefireError):
    """The spec targets a cluster or namespace outside the allowed blast radius."""


class DrillInProgress(LivefireError):
    """Another drill holds the lease on the same target."""


class GuardrailBreached(LivefireError):
    """A stop condition fired while the fault was live; the drill must roll back at once."""


class ProbeRelayLost(LivefireError):
    """A chunk of a probe window waited in vain for the window's origin or for the previous chunk's handoff
    (livefire/probing/relay.py): that chunk did not run or stopped early."""


class MeshAccessError(LivefireError):
    """The Kubernetes API of a cluster could not be reached or refused the request."""


class FaultConflict(LivefireError):
    """The object changed under us (409/422 on a precondition) and could not be reconciled."""


class InjectInProgress(LivefireError):
    """Another invocation of the same Inject wrote the fault's record first and is applying it now. Only a
    duplicated delivery gets here (idempotency refuses most of them first); the state machine retries it and the
    retry returns that invocation's result."""


class FaultInjectionFailed(LivefireError):
    """A fault could not be applied; whatever was applied is rolled back by the catch path."""


class RollbackFailed(LivefireError):
    """A fault could not be restored, or the restored object does not equal its snapshot."""


class EvidenceError(LivefireError):
    """Evidence could not be written or does not verify."""


class SpecDigestMismatch(LivefireError):
    """The drill's stored spec no longer has the digest its Plan recorded: it was changed after planning."""


class GuardianRestoreFailed(LivefireError):
    """The guardian could not restore every fault it had to (one may still be live). Raised once everything else is
    done, so that Lambda retries the event and, after its retries, sends it to the dead-letter queue, where
    GuardianFailedAlarm sees it."""


class TelemetryUnavailable(LivefireError):
    """The mesh's metrics could not be read (unreachable, refused, a secret that may not be sent, a bad answer);
    the telemetry findings are INCONCLUSIVE and the drill is judged on its probes."""


class ApprovalRejected(LivefireError):
    """A person rejected the drill at its go/no-go gate (``livefire reject``): the error its SendTaskFailure names.
    The state machine catches it by name and ends the drill CANCELLED, nothing injected."""


class ApprovalNotPending(LivefireError):
    """The drill is not waiting at its go/no-go gate (no such drill, no gate, already decided, or the gate timed
    out), so there is nothing to approve or reject."""


class NotAnApprover(LivefireError):
    """The person deciding is not one of the drill's ``approval.approvers``."""


class InvalidCampaign(LivefireError):
    """The campaign's input is malformed (its rules, its list or prefix of specs, a spec in it); the message names
    the field or the spec and the problem. Nothing was started."""


class CampaignManifestError(LivefireError):
    """The campaign's manifest could not be written or signed; the drills already ran and kept their evidence."""

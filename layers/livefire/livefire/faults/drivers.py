"""Which driver handles which fault kind: adding a kind is one driver here and its spec model in ``spec``."""

from __future__ import annotations

from livefire.datachecks.cleanup import CLEANUP_KIND, MarkerCleanupDriver
from livefire.errors import FaultInjectionFailed
from livefire.faults.driver import FaultDriver
from livefire.faults.fis import FisDriver
from livefire.faults.mesh import KINDS as MESH_KINDS
from livefire.faults.mesh import MeshDriver
from livefire.faults.webhook import WebhookDriver

_MESH = MeshDriver()
DRIVERS: dict[str, FaultDriver] = {"fis": FisDriver(), "webhook": WebhookDriver(), **dict.fromkeys(MESH_KINDS, _MESH),
                                   CLEANUP_KIND: MarkerCleanupDriver()}


def driver_for(kind: str) -> FaultDriver:
    try:
        return DRIVERS[kind]
    except KeyError:
        raise FaultInjectionFailed(f"fault kind {kind} has no driver") from None

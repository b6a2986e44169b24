"""Powertools idempotency for the steps that touch the mesh (Inject, Rollback), stored in the drill table.

A retried or duplicated invocation with the same drill id and fault ids returns the first one's result without
running again; one that arrives while the first is still running fails with ``IdempotencyAlreadyInProgressError``
instead of racing it. A run that raised leaves no record, so a retry after an error really retries.
Records are ``IDEMPOTENCY#<step>`` / ``<function>#<hash>`` items with an ``expiration`` attribute (epoch seconds).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from livefire.config import Settings

INJECT_KEY = "[plan.drillId, plan.faults[*].faultId]"
# The planned Rollback, the CleanUp and the EmergencyRollback are distinct steps: each runs once.
ROLLBACK_KEY = "[plan.drillId, plan.faults[*].faultId, emergency, final]"
# How long a finished step's result is replayed; longer than any drill's phases.
REPLAY_SECONDS = 6 * 3600


def persistence_layer(step: str, settings: Settings) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=settings.table, key_attr="pk", sort_key_attr="sk", static_pk_value=f"IDEMPOTENCY#{step}",
    )


def step_config(event_key: str) -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath=event_key, raise_on_no_idempotency_key=True, expires_after_seconds=REPLAY_SECONDS,
    )

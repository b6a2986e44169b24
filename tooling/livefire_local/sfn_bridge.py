"""What moto's Step Functions interpreter lacks for a campaign, bridged here and not in the ASL (docs/campaigns.md).

moto 5.2.5 (its LocalStack-derived parser) runs a Distributed Map with an S3 ``ItemReader`` (``listObjectsV2``)
and honours ``MaxConcurrency``, but its ``states:startExecution`` integration (``.sync``, ``.sync:2``) passes the
task's parameters to boto3 as written (``StateMachineArn``) where boto3 wants ``stateMachineArn``: every child
execution fails with ``States.Runtime KeyError('StateMachineArn')``. The same methods left the response in boto3's
casing (``status``) where Step Functions answers ``Status``. ``install()`` gives the integration the
request and response normalisation of the service model, as Step Functions does; nothing else changes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

_original_parameters = StateTaskServiceSfn._normalise_parameters


@cache
def _operation(action: str) -> OperationModel:
    """The Step Functions API operation of a snake_case action (start_execution, describe_execution)."""
    model = botocore.session.get_session().get_service_model("stepfunctions")
    return model.operation_model("".join(part.capitalize() for part in action.split("_")))


def _normalise_parameters(self: StateTaskServiceSfn, parameters: dict[str, Any],
                          boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
    _original_parameters(self, parameters, boto_service_name, service_action_name)
    self._to_boto_request(parameters, _operation(service_action_name or self._get_boto_service_action()).input_shape)


def _normalise_response(self: StateTaskServiceSfn, response: Any, boto_service_name: str | None = None,
                        service_action_name: str | None = None) -> None:
    action = service_action_name or self._get_boto_service_action()
    self._from_boto_response(response, _operation(action).output_shape)


def install() -> None:
    """Bridge the gap (idempotent): `states:startExecution` tasks then run their child executions."""
    StateTaskServiceSfn._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = _normalise_response  # type: ignore[method-assign, assignment]

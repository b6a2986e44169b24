"""Reads template.yaml so local mode builds exactly what the stack deploys (functions, table, substitutions).

Only the intrinsic functions the template uses are understood: ``Ref`` (``AWS::NoValue`` drops the key or list
item), ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::If`` with the template's ``Conditions`` (``Fn::Equals``, ``Fn::Not``,
``Fn::And``, ``Fn::Or``), ``Fn::Join``, ``Fn::Split`` and ``Fn::Select``. Parameters take their defaults unless
``LocalTemplate.load(..., parameters=...)`` overrides them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"


class _NoValue:
    """What ``Ref: AWS::NoValue`` resolves to: the enclosing key or list item is dropped."""


NO_VALUE = _NoValue()


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short-form tags into their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        document = yaml.load(fh, Loader=_CfnLoader)
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


@dataclass
class LocalFunction:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory_mb: int

    @property
    def name(self) -> str:
        return f"livefire-{self.logical_id}"


@dataclass
class LocalTemplate:
    """The parts of template.yaml local mode needs, with every reference resolved to a local name."""

    root: Path
    document: dict[str, Any]
    region: str = "us-east-1"
    physical_names: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path, region: str = "us-east-1", *, template_file: str = "template.yaml",
             parameters: dict[str, Any] | None = None) -> LocalTemplate:
        template = cls(root=root, document=load_template(root / template_file), region=region,
                       parameters=dict(parameters or {}))
        unknown = set(template.parameters) - set(template.document.get("Parameters", {}))
        if unknown:
            raise KeyError(f"{template_file} has no parameters {sorted(unknown)}")
        for logical_id, resource in template.resources.items():
            kind = resource["Type"]
            if kind == "AWS::S3::Bucket":
                template.physical_names[logical_id] = f"livefire-local-{logical_id.lower()}"
            elif kind == "AWS::Serverless::Function":
                template.physical_names[logical_id] = f"livefire-{logical_id}"
            else:
                template.physical_names[logical_id] = f"livefire-local-{logical_id}"
        for logical_id, resource in template.resources_of_type("AWS::Logs::LogGroup").items():
            if "LogGroupName" in resource.get("Properties", {}):
                template.physical_names[logical_id] = str(template.resolve(resource["Properties"]["LogGroupName"]))
        return template

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.document.get("Resources", {}))

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def parameter_default(self, name: str) -> str:
        return str(self.document["Parameters"][name].get("Default", ""))

    def parameter(self, name: str) -> Any:
        """The parameter's value (override or default); a CommaDelimitedList is a list, as in CloudFormation."""
        declared = self.document["Parameters"][name]
        value = self.parameters.get(name, declared.get("Default", ""))
        if declared.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            return [item.strip() for item in value.split(",")]
        return value if isinstance(value, list) else str(value)

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.document["Conditions"][name]))

    def arn_of(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_names[logical_id]
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{name}"
        if kind == "AWS::Serverless::Function":
            return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"
        if kind == "AWS::Serverless::StateMachine":
            return f"arn:aws:states:{self.region}:{ACCOUNT}:stateMachine:{name}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{name}:*"
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{name}"
        if kind == "AWS::KMS::Key":
            return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{name}"
        raise KeyError(f"no local ARN for {logical_id} ({kind})")

    def resolve(self, value: Any) -> Any:
        """Evaluate the intrinsic functions against local names, parameters and pseudo parameters.

        A key or list item whose value is ``AWS::NoValue`` is dropped; at the top level ``NO_VALUE`` is returned.
        """
        if isinstance(value, dict) and len(value) == 1:
            key = next(iter(value))
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._evaluate(value)
        if isinstance(value, dict):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        return value

    def _evaluate(self, value: Any) -> Any:
        if not (isinstance(value, dict) and len(value) == 1):
            return self.resolve(value)
        (key, arg), = value.items()
        if key == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else self._ref(str(arg))
        if key == "Condition":
            return self.condition(str(arg))
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self._get_att(logical_id, attribute)
        if key == "Fn::Sub":
            text, variables = (arg[0], {k: self.resolve(v) for k, v in arg[1].items()}) if isinstance(arg, list) \
                else (arg, {})
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(variables[m.group(1)] if m.group(1) in variables
                                                           else self._sub(m.group(1))), str(text))
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in arg)
            return left == right
        if key == "Fn::Not":
            return not self._evaluate(arg[0])
        if key == "Fn::And":
            return all(self._evaluate(v) for v in arg)
        if key == "Fn::Or":
            return any(self._evaluate(v) for v in arg)
        if key == "Fn::Join":
            delimiter, items = arg
            return str(delimiter).join(str(v) for v in self._as_list(items))
        if key == "Fn::Split":
            delimiter, text = arg
            return str(self.resolve(text)).split(str(delimiter))
        if key == "Fn::Select":
            index, items = arg
            return self._as_list(items)[int(self.resolve(index))]
        raise KeyError(f"{key} is not supported locally")

    def _as_list(self, value: Any) -> list[Any]:
        resolved = self.resolve(value)
        if not isinstance(resolved, list):
            raise ValueError(f"expected a list, got {resolved!r}")
        return resolved

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn_of(logical_id)
        if attribute in ("QueueName", "Name"):
            return self.physical_names[logical_id]
        raise KeyError(f"GetAtt {logical_id}.{attribute} is not supported locally")

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::StackName": "livefire-local"}
        if name in pseudo:
            return pseudo[name]
        if name in self.document.get("Parameters", {}):
            return self.parameter(name)
        if self.resources.get(name, {}).get("Type") == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{self.physical_names[name]}"
        return self.physical_names[name]

    def _sub(self, expression: str) -> str:
        if "." in expression:
            logical_id, attribute = expression.split(".", 1)
            return str(self._get_att(logical_id, attribute))
        return str(self._ref(expression))

    def functions(self) -> list[LocalFunction]:
        globals_ = self.document.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        functions = []
        for logical_id, resource in self.resources_of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            functions.append(
                LocalFunction(
                    logical_id=logical_id,
                    code_dir=self.root / props["CodeUri"],
                    handler=props["Handler"],
                    environment={k: str(self.resolve(v)) for k, v in env.items()},
                    timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                    memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                )
            )
        return functions

    def state_machine_definition(self, logical_id: str = "DrillStateMachine") -> str:
        """The ASL file with its DefinitionSubstitutions applied, as `sam deploy` would."""
        props = self.resources[logical_id]["Properties"]
        definition = (self.root / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(self.resolve(value)))
        return definition

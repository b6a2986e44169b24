"""Reads template.yaml so local mode builds exactly what the stack deploys (functions, table, substitutions).

Only the intrinsic functions the template uses are understood: ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT = "123456789012"


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

    @classmethod
    def load(cls, root: Path, region: str = "us-east-1") -> LocalTemplate:
        template = cls(root=root, document=load_template(root / "template.yaml"), region=region)
        for logical_id, resource in template.resources.items():
            kind = resource["Type"]
            if kind == "AWS::S3::Bucket":
                template.physical_names[logical_id] = f"livefire-local-{logical_id.lower()}"
            elif kind == "AWS::DynamoDB::Table":
                template.physical_names[logical_id] = f"livefire-local-{logical_id}"
            elif kind == "AWS::Serverless::Function":
                template.physical_names[logical_id] = f"livefire-{logical_id}"
            elif kind == "AWS::Serverless::StateMachine":
                template.physical_names[logical_id] = f"livefire-local-{logical_id}"
        return template

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.document.get("Resources", {}))

    def resources_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}

    def parameter_default(self, name: str) -> str:
        return str(self.document["Parameters"][name].get("Default", ""))

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
        raise KeyError(f"no local ARN for {logical_id} ({kind})")

    def resolve(self, value: Any) -> Any:
        """Evaluate Ref / GetAtt / Sub against local names, parameter defaults and pseudo parameters."""
        if isinstance(value, dict) and len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(str(arg))
            if key == "Fn::GetAtt":
                logical_id, attribute = arg
                if attribute == "Arn":
                    return self.arn_of(logical_id)
                raise KeyError(f"GetAtt {logical_id}.{attribute} is not supported locally")
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), str(arg))
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::StackName": "livefire-local"}
        if name in pseudo:
            return pseudo[name]
        if name in self.document.get("Parameters", {}):
            return self.parameter_default(name)
        return self.physical_names[name]

    def _sub(self, expression: str) -> str:
        if "." in expression:
            logical_id, attribute = expression.split(".", 1)
            return str(self.resolve({"Fn::GetAtt": [logical_id, attribute]}))
        return self._ref(expression)

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

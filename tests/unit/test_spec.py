"""The drill spec: strict validation whose every error names the field path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livefire.errors import InvalidDrillSpec
from livefire.spec import format_duration, parse_duration, parse_spec
from tests.conftest import field_paths, sandbox_spec_document


def test_the_sandbox_spec_is_valid_and_normalizes_durations_to_seconds() -> None:
    spec = parse_spec(sandbox_spec_document())

    assert (spec.phases.fault, spec.phases.recovery) == (1.0, 7.0)
    assert spec.probes.interval == pytest.approx(0.1)
    assert spec.to_document()["probes"]["interval"] == "100ms"


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0),
                                               ("1.5s", 1.5), (2, 2.0)])
def test_durations_parse_from_the_units_users_write(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-5s", "5", "five seconds", "5d", "", True])
def test_malformed_durations_are_refused(text: Any) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_duration_formatting_round_trips() -> None:
    for seconds in (0.01, 0.25, 1.0, 30.0, 1.5):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_an_unknown_key_is_named_with_its_full_path() -> None:
    document = sandbox_spec_document()
    document["fault"]["abort"]["percnt"] = 100

    with pytest.raises(InvalidDrillSpec, match=r"fault\.abort\.percnt: unknown field"):
        parse_spec(document)


def test_a_negative_duration_is_named_with_its_path() -> None:
    document = sandbox_spec_document()
    document["phases"]["fault"] = "-5s"

    with pytest.raises(InvalidDrillSpec, match=r"phases\.fault: .*negative"):
        parse_spec(document)


def test_a_percent_above_100_is_refused() -> None:
    document = sandbox_spec_document()
    document["fault"]["abort"]["percent"] = 150

    with pytest.raises(InvalidDrillSpec, match=r"fault\.abort\.percent"):
        parse_spec(document)


def test_a_fault_outside_the_allowed_namespaces_is_refused() -> None:
    document = sandbox_spec_document()
    document["guardrails"]["allowedNamespaces"] = ["checkout"]

    with pytest.raises(InvalidDrillSpec, match="allowedNamespaces"):
        parse_spec(document)


def test_active_passive_without_a_standby_is_refused() -> None:
    document = sandbox_spec_document()
    document["regions"][1]["role"] = "active"

    with pytest.raises(InvalidDrillSpec, match="standby"):
        parse_spec(document)


def test_a_cluster_needs_exactly_one_access_mode() -> None:
    document = sandbox_spec_document()
    document["regions"][0]["cluster"] = {"sandbox": "a", "eks": "b"}

    with pytest.raises(InvalidDrillSpec, match=r"regions\.0\.cluster"):
        parse_spec(document)


def test_a_spec_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidDrillSpec, match="mapping"):
        parse_spec(["not", "a", "spec"])


# -- fuzzing: every malformed spec is a clean InvalidDrillSpec naming a field, never another exception -------

_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**12, max_value=10**12), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["-1s", "0s", "1e9h", "250ms", "http://x", "", "payments"]),
)
_values = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=6)




_BASE = sandbox_spec_document()
_PATHS = field_paths(_BASE)


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(_BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_PATHS))
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(_values)
            elif action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return document


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_fuzzed_specs_are_either_valid_or_a_clean_invalid_drill_spec(document: dict[str, Any]) -> None:
    try:
        parse_spec(document)
    except InvalidDrillSpec as exc:
        message = str(exc)
        assert message and "\n" not in message
        assert ": " in message  # "<field path>: <problem>"

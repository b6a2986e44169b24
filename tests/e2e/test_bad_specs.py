"""Every bad input to `livefire run` gets one clear line: exit 2, the file and the field path or line:column, no
traceback, nothing planned. The table runs the CLI's main() in-process (fast); a few cases also run as a user
types them, in a subprocess."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from livefire_local import cli, runner
from tests.conftest import ROOT, sandbox_spec_document

CORPUS = ROOT / "tests" / "data" / "bad_specs"
EXIT_ERROR = 2
LIMIT_S = 5.0


@dataclass(frozen=True)
class Case:
    """A bad input: how to write it into a folder (returns the argument given to `livefire run`), and what its
    one line must say after the file name."""

    name: str
    write: Callable[[Path], str]
    expect: str
    stdin: bytes = b""


def spec_text(**changes: Any) -> str:
    """The sandbox drill as YAML with ``changes`` applied (``a__b__0=v`` sets document["a"]["b"][0] = v)."""
    document = sandbox_spec_document()
    for path, value in changes.items():
        node: Any = document
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return yaml.safe_dump(document, sort_keys=False)


def text_file(text: str | bytes, name: str = "spec.yaml") -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        path = folder / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return str(path)

    return write


def replaced(old: str, new: str, **changes: Any) -> Callable[[Path], str]:
    base = spec_text(**changes)
    assert old in base, old
    return text_file(base.replace(old, new, 1))


def corpus(name: str) -> Callable[[Path], str]:
    return lambda _folder: str(CORPUS / name)


def regions(count: int) -> list[dict[str, Any]]:
    """``count`` regions; the first is the fault's (us-east-1)."""
    names = ["us-east-1", *[f"r{i}" for i in range(1, count)]]
    return [{"name": name, "role": "primary" if i == 0 else "standby", "cluster": {"sandbox": f"c{i}"},
             "endpoint": f"http://r{i}.payments.sandbox/healthz"} for i, name in enumerate(names)]


def webhook(url: str) -> dict[str, Any]:
    return {"kind": "webhook", "region": "us-east-1",
            "webhook": {"inject": {"url": url}, "rollback": {"url": "https://hooks.example/stop"}}}


def deep(folder: Path) -> str:
    path = folder / "deep.yaml"
    path.write_text("[" * 20_000 + "]" * 20_000)
    return str(path)


def laughs(folder: Path) -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for this, previous in zip("bcdefg", "abcdef", strict=True):
        lines.append(f"{this}: &{this} [{', '.join([f'*{previous}'] * 9)}]")
    path = folder / "laughs.yaml"
    path.write_text("\n".join(lines) + "\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n")
    return str(path)


CASES = [
    # -- reading the file
    Case("missing-file", lambda folder: str(folder / "nowhere.yaml"), "nowhere.yaml: no such file"),
    Case("directory", str, ": is a directory, not a spec file"),
    Case("stdin-syntax-error", lambda _folder: "-", "<stdin>:1:5: while parsing a flow node", stdin=b"a: ["),
    Case("empty-file", text_file(""), "spec.yaml: (spec): must be a mapping, got nothing"),
    Case("not-utf8", text_file(b"apiVersion: livefire/v1\nkind: \xff\xfe\n"), "spec.yaml: not UTF-8 text (byte 30)"),
    Case("over-256-KiB", replaced("owner: sre-payments", "owner: sre-payments\n  description: " + "x" * 270_000),
         "spec.yaml: (spec): larger than 262144 bytes"),
    Case("list-document", text_file("- apiVersion: livefire/v1\n"), "(spec): must be a mapping, got list"),
    Case("scalar-document", text_file("just words\n"), "(spec): must be a mapping, got str"),
    # -- YAML the reader refuses (line:column)
    Case("nesting-20000-deep", deep, "deep.yaml:1:129: nested deeper than 32 levels"),
    Case("billion-laughs", laughs, "laughs.yaml: (spec): larger than 262144 bytes"),
    Case("huge-integer", replaced("percent: 100", "percent: " + "9" * 5000), "integer too large"),
    Case("date-in-webhook-body", replaced("kind: webhook", "kind: webhook\n  when: 2026-12-01",
                                          fault=webhook("https://hooks.example/start")),
         "a YAML date or time is not a JSON value: quote it"),
    Case("bool-key", text_file(spec_text() + "yes: 1\n"), "spec.yaml: (spec): key 'True' is a bool, not a string"),
    Case("integer-key", replaced("service: payments", "service: payments\n  3: x"),
         "spec.yaml: metadata: key '3' is a int, not a string"),
    # -- non-finite numbers and durations
    Case("infinite-fault", replaced("fault: 1s", "fault: .inf"), "spec.yaml: phases.fault: must be a finite number"),
    Case("nan-availability", replaced("availability: 90", "availability: .nan"),
         "objectives.availability: must be a finite number (got nan)"),
    Case("overflowing-float", replaced("recovery: 7s", "recovery: 1.0e+999"), "phases.recovery: must be a finite"),
    Case("10000h-fault", text_file(spec_text(phases__fault="10000h")), "phases.fault: must be at most 24h"),
    Case("1ms-lead", text_file(spec_text(phases__lead="1ms")), "phases.lead: must be a whole number of seconds"),
    Case("sub-millisecond-sustain", text_file(spec_text(probes__sustain="0.5ms")),
         "probes.sustain: must be a multiple of 1ms"),
    Case("negative-fault", text_file(spec_text(phases__fault="-5s")), "phases.fault: must be a non-negative"),
    Case("duration-as-bool", text_file(spec_text(phases__recovery=True)), "phases.recovery: must be a duration"),
    Case("phases-over-a-day", text_file(spec_text(phases={"lead": "10h", "fault": "10h", "recovery": "5h"})),
         "phases: lead + fault + recovery is 90000s, over the 86400s a drill may observe"),
    Case("no-burst-budget", text_file(spec_text(probes__burstMaxDuration="0s")),
         "probes.burstMaxDuration: must be at least 1s"),
    Case("burst-budget-over-an-hour", text_file(spec_text(probes__burstMaxDuration="2h")),
         "probes.burstMaxDuration: must be at most 1h"),
    Case("burst-budget-not-a-duration", text_file(spec_text(probes__burstMaxDuration="a minute")),
         "probes.burstMaxDuration: must be a non-negative duration"),
    # -- probe budget
    Case("1ms-interval-42-targets", text_file(spec_text(regions=regions(41), probes__interval="1ms")),
         "probes.interval: must be at least 10ms"),
    Case("probe-rate-over-budget", text_file(spec_text(regions=regions(20), probes__interval="100ms")),
         "probes.interval: 21 targets every 100ms is 210 probes/s per vantage, over the budget of 200/s"),
    Case("connections-over-budget", text_file(spec_text(probes__timeout="30s", probes__burstInterval="5ms")),
         "probes.timeout: 3 targets x 30s timeout / 5ms burstInterval is up to 18000 connections"),
    Case("too-many-regions", text_file(spec_text(regions=regions(21))), "regions: List should have at most 20"),
    Case("5ms-interval", text_file(spec_text(probes__interval="5ms", probes__burstInterval="5ms")),
         "probes.interval: must be at least 10ms"),
    Case("burst-slower-than-interval", text_file(spec_text(probes__burstInterval="200ms")),
         "probes: burstInterval must not be longer than interval"),
    Case("one-minute-timeout", text_file(spec_text(probes__timeout="1m")), "probes.timeout: must be at most 30s"),
    # -- faults and URLs
    Case("zero-percent-abort", text_file(spec_text(fault__abort__percent=0)),
         "fault.abort.percent: Input should be greater than 0"),
    Case("percent-over-100", text_file(spec_text(fault__abort__percent=150)), "fault.abort.percent: Input should be"),
    Case("entrypoint-is-a-region", text_file(spec_text(entrypoint="http://USE1.payments.sandbox:80/healthz")),
         "entrypoint: is regions.0.endpoint (us-east-1's own endpoint)"),
    Case("userinfo-in-endpoint", text_file(spec_text(regions__0__endpoint="https://ops:hunter2@use1.example/")),
         "regions.0.endpoint: must not carry credentials"),
    Case("userinfo-in-webhook", text_file(spec_text(fault=webhook("https://bot:t0k3n@hooks.example/start"))),
         "fault.webhook.inject.url: must not carry credentials"),
    Case("secret-over-http", text_file(spec_text(fault={**webhook("https://hooks.example/start"), "webhook": {
        "inject": {"url": "http://hooks.example/start", "headersSecret": "livefire/runbook"},
        "rollback": {"url": "https://hooks.example/stop"}}})),
         "fault.webhook.inject.url: must be https when headersSecret is given"),
    Case("query-in-webhook-url", text_file(spec_text(fault=webhook("https://hooks.example/start?token=abc"))),
         "fault.webhook.inject.url: must not carry a query string or fragment"),
    Case("ftp-url", text_file(spec_text(entrypoint="ftp://payments.sandbox/healthz")),
         "entrypoint: must be an http(s) URL"),
    Case("bad-port", text_file(spec_text(entrypoint="http://payments.sandbox:99999/healthz")),
         "entrypoint: is not a valid URL"),
    Case("url-too-long", text_file(spec_text(entrypoint="http://payments.sandbox/" + "a" * 3000)),
         "entrypoint: must be at most 2048 characters long"),
    # -- the spec's own fields
    Case("unknown-key", text_file(spec_text(probes__intervall="100ms")), "probes.intervall: unknown field"),
    Case("wrong-api-version", text_file(spec_text(apiVersion="livefire/v2")), "apiVersion: Input should be"),
    Case("missing-phases-fault", text_file(spec_text(phases={"recovery": "4s"})), "phases.fault: Field required"),
    Case("upper-case-name", text_file(spec_text(metadata__name="Payments")), "metadata.name: String should match"),
    Case("unknown-region", text_file(spec_text(fault__region="eu-west-9")), "fault.region: 'eu-west-9' is not one"),
    *[Case(f"corpus-{name}", corpus(f"{name}.yaml"), f"{name}.yaml:{where}") for name, where in [
        ("unclosed-flow-mapping", "4:8: while parsing a flow mapping"),
        ("bad-indentation", "3:11: mapping values are not allowed here"),
        ("tab-indentation", "4:1: while scanning for the next token"),
        ("python-object-tag", "2:7: could not determine a constructor for the tag"),
        ("python-apply-tag", "2:7: could not determine a constructor for the tag"),
        ("binary-tag", "2:7: binary data is not a JSON value"),
        ("set-tag", "2:7: a YAML set is not a JSON value"),
        ("unknown-local-tag", "2:7: could not determine a constructor for the tag '!custom'"),
        ("yaml-date", "4:10: a YAML date or time is not a JSON value: quote it"),
        ("duplicate-key", "4:1: duplicate key 'mode' (first given on line 3)"),
        ("duplicate-key-in-flow-mapping", "3:21: duplicate key 'name'"),
        ("two-documents", "2:1: expected a single document in the stream"),
        ("unterminated-string", "3:1: while scanning a quoted scalar"),
        ("recursive-alias", " metadata.service.service.service...: nested deeper than 32 levels"),
        ("undefined-alias", "2:7: found undefined alias 'nowhere'"),
        ("unhashable-key", "2:3: while constructing a mapping, found unhashable key"),
        ("control-character", "3:11: character 7 is not allowed in YAML"),
        ("misplaced-directive", "5:1: expected '<document start>'"),
    ]],
]


def test_the_table_holds_at_least_40_bad_inputs_and_the_whole_corpus() -> None:
    assert len(CASES) >= 40
    assert {path.name for path in CORPUS.glob("*.yaml")} == {
        Path(case.write(CORPUS)).name for case in CASES if case.name.startswith("corpus-")}


@pytest.fixture
def nothing_planned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fails the test if the runner ever builds the sandbox and the local stack (nothing may be planned)."""
    entered: list[str] = []

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        entered.append("sandbox_session")
        raise AssertionError("a bad spec reached the sandbox and the local stack")

    monkeypatch.setattr(runner, "sandbox_session", refuse)
    yield entered
    assert entered == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_bad_input_exits_2_with_one_line_naming_the_file_and_the_problem(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    nothing_planned: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin)))
    argument = case.write(tmp_path)
    started = time.monotonic()

    code = cli.main(["run", argument, "--evidence-dir", str(tmp_path / "evidence")])

    took = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == EXIT_ERROR
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("invalid drill spec: ") and case.expect in lines[0], lines[0]
    shown = "<stdin>" if argument == "-" else Path(argument).name
    assert shown in lines[0]
    assert out == "" and "Traceback" not in err
    assert not (tmp_path / "evidence").exists()
    assert took < LIMIT_S


def livefire(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "livefire_local.cli", *args], cwd=cwd, input=stdin,
                          capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("name", ["stdin-syntax-error", "corpus-duplicate-key", "corpus-python-object-tag",
                                  "infinite-fault", "missing-file"])
def test_a_bad_input_typed_at_a_shell_gets_the_same_one_line(name: str, tmp_path: Path) -> None:
    [case] = [case for case in CASES if case.name == name]
    argument = case.write(tmp_path)

    result = livefire("run", argument, "--evidence-dir", str(tmp_path / "evidence"), cwd=tmp_path,
                      stdin=case.stdin)

    err = result.stderr.decode()
    assert result.returncode == EXIT_ERROR
    assert len(err.splitlines()) == 1 and case.expect in err
    assert "Traceback" not in err + result.stdout.decode()
    assert not (tmp_path / "evidence").exists()

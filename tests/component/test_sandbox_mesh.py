"""The sandbox mesh's data plane: regional services that obey the store, and an entrypoint that fails over
like Istio locality failover + outlier detection. Real HTTP on 127.0.0.1 wherever a server is involved."""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from livefire.errors import InvalidDrillSpec
from livefire.spec import DrillSpec, parse_spec
from livefire_local.sandbox.entrypoint import Entrypoint
from livefire_local.sandbox.loopback import Request
from livefire_local.sandbox.mesh import ENV_CLUSTERS, ENV_RESOLVE, ENV_TOKEN, SandboxMesh
from livefire_local.sandbox.services import (
    APP_ERROR,
    APP_ERROR_PERCENT,
    BACKGROUND_REQUESTS,
    FAULT_ABORT,
    NO_HEALTHY_UPSTREAM,
    OVERFLOW,
    SCRIPTED_OUTAGE,
    RegionalService,
    parse_istio_duration,
    pool_capacity,
)
from livefire_local.sandbox.store import ClusterStore, ObjectKey

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "drills" / "sandbox" / "active-passive.yaml"
MESH_DIR = ROOT / "drills" / "sandbox" / "mesh"
NS = "payments"
VS_KEY = ObjectKey("networking.istio.io", "virtualservices", NS, "payments")
DR_KEY = ObjectKey("networking.istio.io", "destinationrules", NS, "payments")
EAST, WEST = "us-east-1", "us-west-2"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


# -- builders ---------------------------------------------------------------------------------------------
def virtual_service(http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "payments", "namespace": NS},
        "spec": {"hosts": ["payments"], "http": http},
    }


def route_to(*subsets: str, weights: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    destinations: list[dict[str, Any]] = [{"destination": {"host": "payments", "subset": s}} for s in subsets]
    for destination, weight in zip(destinations, weights or [], strict=False):
        destination["weight"] = weight
    return {"route": destinations, **extra}


def destination_rule(traffic_policy: dict[str, Any] | None = None,
                     subsets: tuple[str, ...] = ("v1", "v2", "v3")) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "host": "payments",
        "subsets": [{"name": s, "labels": {"version": s}} for s in subsets],
    }
    if traffic_policy is not None:
        spec["trafficPolicy"] = traffic_policy
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "payments", "namespace": NS}, "spec": spec,
    }


def deployment(version: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": "payments", "version": version}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"payments-{version}", "namespace": NS, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": []}}},
    }


def cluster(*documents: dict[str, Any]) -> ClusterStore:
    store = ClusterStore(f"sandbox-{uuid.uuid4().hex[:8]}")
    store.seed(documents)
    return store


def simple_cluster(traffic_policy: dict[str, Any] | None = None) -> ClusterStore:
    return cluster(virtual_service([route_to("v1")]), destination_rule(traffic_policy), deployment("v1"))


def edit(store: ClusterStore, key: ObjectKey, change: Any) -> None:
    """Change an object the way the fake API server would: under the store's lock, via replace."""
    with store.lock:
        obj = store.get(key)
        assert obj is not None
        change(obj)
        store.replace(key, obj)


def set_fault(store: ClusterStore, fault: dict[str, Any] | None, route: int = 0) -> None:
    def change(vs: dict[str, Any]) -> None:
        if fault is None:
            vs["spec"]["http"][route].pop("fault", None)
        else:
            vs["spec"]["http"][route]["fault"] = fault

    edit(store, VS_KEY, change)


def abort(status: int = 503, percent: float | None = 100.0) -> dict[str, Any]:
    section: dict[str, Any] = {"httpStatus": status}
    if percent is not None:
        section["percentage"] = {"value": percent}
    return {"abort": section}


def failover_policy(outlier: dict[str, Any] | None, first: str = EAST, then: str = WEST) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "loadBalancer": {"localityLbSetting": {"enabled": True, "failover": [{"from": first, "to": then}]}}
    }
    if outlier is not None:
        policy["outlierDetection"] = outlier
    return policy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- HTTP -------------------------------------------------------------------------------------------------
def get(base_url: str, path: str = "/healthz", headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(base_url + path, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=2) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def served_by(answer: tuple[int, dict[str, str], bytes]) -> str | None:
    return answer[1].get("x-served-region")


@pytest.fixture
def east_store() -> ClusterStore:
    return simple_cluster()


@pytest.fixture
def east(east_store: ClusterStore) -> Iterator[RegionalService]:
    with RegionalService(EAST, east_store, "payments", seed=1) as service:
        yield service


# -- parse_istio_duration ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [("1.5s", 1.5), ("250ms", 0.25), ("1m30s", 90.0), ("2h", 7200.0)])
def test_istio_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_istio_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1.5", "s", "5 parsecs", "1s junk"])
def test_a_malformed_istio_duration_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_istio_duration(text)


# -- RegionalService --------------------------------------------------------------------------------------
def test_a_region_serves_200_naming_its_region_and_version(east: RegionalService) -> None:
    status, headers, body = get(east.url)

    assert status == 200
    assert headers["x-served-region"] == EAST
    assert headers["x-version"] == "v1"
    assert json.loads(body) == {"region": EAST, "version": "v1"}


def test_a_full_abort_written_into_the_store_answers_503_on_the_next_request(
    east: RegionalService, east_store: ClusterStore
) -> None:
    set_fault(east_store, abort(503, 100))

    status, headers, body = get(east.url)

    assert status == 503
    assert body == FAULT_ABORT
    assert "x-served-region" not in headers


def test_removing_the_abort_restores_service_on_the_next_request(
    east: RegionalService, east_store: ClusterStore
) -> None:
    set_fault(east_store, abort(503, 100))
    assert get(east.url)[0] == 503

    set_fault(east_store, None)

    assert served_by(get(east.url)) == EAST


def test_an_abort_without_a_percentage_aborts_no_request_as_in_istio(
    east: RegionalService, east_store: ClusterStore
) -> None:
    set_fault(east_store, abort(503, percent=None))

    statuses = {get(east.url)[0] for _ in range(20)}

    assert statuses == {200}


def test_a_delay_fault_holds_each_answer_for_its_fixed_delay(
    east: RegionalService, east_store: ClusterStore
) -> None:
    set_fault(east_store, {"delay": {"fixedDelay": "300ms", "percentage": {"value": 100}}})

    started = time.monotonic()
    status, headers, _ = get(east.url)
    elapsed = time.monotonic() - started

    assert status == 200
    assert headers["x-served-region"] == EAST
    assert elapsed >= 0.3


def test_a_deployment_scaled_to_zero_answers_no_healthy_upstream(
    east: RegionalService, east_store: ClusterStore
) -> None:
    key = ObjectKey("apps", "deployments", NS, "payments-v1")
    edit(east_store, key, lambda d: d["spec"].update(replicas=0))

    status, headers, body = get(east.url)

    assert (status, body) == (503, NO_HEALTHY_UPSTREAM)
    assert "x-served-region" not in headers
    edit(east_store, key, lambda d: d["spec"].update(replicas=1))
    assert get(east.url)[0] == 200


def test_route_weights_split_traffic_between_versions() -> None:
    store = cluster(
        virtual_service([route_to("v1", "v2", "v3", weights=[80, 20, 0])]),
        destination_rule(), deployment("v1"), deployment("v2"), deployment("v3"),
    )
    with RegionalService(EAST, store, "payments", seed=7) as service:
        versions = Counter(get(service.url)[1]["x-version"] for _ in range(400))

    assert set(versions) <= {"v1", "v2"}
    assert versions["v3"] == 0
    assert 50 <= versions["v2"] <= 110  # expected 80 (sd 8)
    assert versions["v1"] + versions["v2"] == 400


def test_the_first_route_that_matches_uri_or_headers_wins() -> None:
    store = cluster(
        virtual_service([
            route_to("v2", match=[{"headers": {"x-canary": {"exact": "yes"}}}]),
            route_to("v1", match=[{"uri": {"prefix": "/api/"}}], fault=abort(500, 100)),
            route_to("v3", match=[{"uri": {"exact": "/version"}}]),
            route_to("v1"),
        ]),
        destination_rule(), deployment("v1"), deployment("v2"), deployment("v3"),
    )
    with RegionalService(EAST, store, "payments") as service:
        canary = get(service.url, "/api/pay", headers={"X-Canary": "yes"})
        api = get(service.url, "/api/pay")
        exact = get(service.url, "/version?x=1")
        not_exact = get(service.url, "/version/more")

    assert (canary[0], canary[1]["x-version"]) == (200, "v2")
    assert api[0] == 500
    assert exact[1]["x-version"] == "v3"
    assert not_exact[1]["x-version"] == "v1"


def test_a_request_no_route_matches_is_not_found() -> None:
    store = cluster(
        virtual_service([route_to("v1", match=[{"uri": {"prefix": "/api/"}}])]),
        destination_rule(), deployment("v1"),
    )
    with RegionalService(EAST, store, "payments") as service:
        assert get(service.url, "/healthz")[0] == 404


def test_a_subset_missing_from_the_destination_rule_has_no_healthy_upstream() -> None:
    store = cluster(virtual_service([route_to("v9")]), destination_rule(), deployment("v1"))
    with RegionalService(EAST, store, "payments") as service:
        status, _, body = get(service.url)

    assert (status, body) == (503, NO_HEALTHY_UPSTREAM)


def test_a_scripted_outage_answers_its_status_only_inside_its_window(east_store: ClusterStore) -> None:
    clock = FakeClock()
    with RegionalService(EAST, east_store, "payments", clock=clock) as service:
        outage = service.script_outage(1.0, 2.0, status=502)
        before = get(service.url)
        clock.advance(1.0)
        during = get(service.url)
        clock.advance(2.0)
        after = get(service.url)

    assert (outage.start, outage.end) == (1001.0, 1003.0)
    assert served_by(before) == EAST
    assert (during[0], during[2]) == (502, SCRIPTED_OUTAGE)
    assert "x-served-region" not in during[1]
    assert served_by(after) == EAST


# -- circuit breaking and broken builds --------------------------------------------------------------------
def pool(**limits: int) -> dict[str, Any]:
    tcp = {k: v for k, v in limits.items() if k == "maxConnections"}
    http = {k: v for k, v in limits.items() if k != "maxConnections"}
    return {"connectionPool": {"tcp": tcp, "http": http}}


@pytest.mark.parametrize(
    ("limits", "capacity"),
    [
        ({}, None),
        ({"maxConnections": 9}, 9),
        ({"maxConnections": 9, "http2MaxRequests": 7, "http1MaxPendingRequests": 12}, 7),
        ({"maxRequestsPerConnection": 1}, None),  # not a concurrency limit
    ],
)
def test_the_pool_capacity_is_the_smallest_concurrency_limit_set(limits: dict[str, int], capacity: int | None) -> None:
    assert pool_capacity(destination_rule(pool(**limits))) == capacity


def test_a_pool_squeezed_below_the_background_load_sheds_every_request_like_envoy() -> None:
    squeezed = pool(maxConnections=1, http2MaxRequests=1, http1MaxPendingRequests=1)
    with RegionalService(EAST, simple_cluster(squeezed), "payments") as service:
        answers = [get(service.url) for _ in range(5)]

    assert {(a[0], a[2]) for a in answers} == {(503, OVERFLOW)}
    assert all(a[1]["x-envoy-overloaded"] == "true" and "x-served-region" not in a[1] for a in answers)


def test_a_pool_with_room_for_the_background_and_one_probe_serves_every_request() -> None:
    roomy = pool(http2MaxRequests=BACKGROUND_REQUESTS + 1)
    with RegionalService(EAST, simple_cluster(roomy), "payments") as service:
        answers = [get(service.url)[0] for _ in range(5)]

    assert answers == [200] * 5


def test_a_squeeze_written_into_the_store_applies_on_the_next_request(
    east: RegionalService, east_store: ClusterStore
) -> None:
    assert get(east.url)[0] == 200

    edit(east_store, DR_KEY, lambda dr: dr["spec"].update(trafficPolicy=pool(http2MaxRequests=1)))

    status, headers, body = get(east.url)
    assert (status, body, headers["x-envoy-overloaded"]) == (503, OVERFLOW, "true")


def annotated(version: str, percent: str) -> dict[str, Any]:
    document = deployment(version)
    document["spec"]["template"]["metadata"]["annotations"] = {APP_ERROR_PERCENT: percent}
    return document


def test_a_broken_build_fails_its_share_of_requests_with_a_500_that_names_its_version() -> None:
    store = cluster(
        virtual_service([route_to("v1", "v2", weights=[50, 50])]), destination_rule(),
        deployment("v1"), annotated("v2", "100"),
    )
    with RegionalService(EAST, store, "payments", seed=11) as service:
        answers = [get(service.url) for _ in range(200)]

    by_version = Counter((a[1]["x-version"], a[0]) for a in answers)
    assert set(by_version) == {("v1", 200), ("v2", 500)}
    assert 60 <= by_version[("v2", 500)] <= 140  # expected 100 (sd 7)
    assert all(a[2] == APP_ERROR and served_by(a) == EAST for a in answers if a[0] == 500)


def test_a_build_failing_half_its_requests_fails_about_half() -> None:
    store = cluster(virtual_service([route_to("v2")]), destination_rule(), annotated("v2", "50"))
    with RegionalService(EAST, store, "payments", seed=5) as service:
        statuses = Counter(get(service.url)[0] for _ in range(200))

    assert set(statuses) == {200, 500}
    assert 60 <= statuses[500] <= 140


# -- Entrypoint -------------------------------------------------------------------------------------------
def pair(policy: dict[str, Any] | None, clock: FakeClock | None = None
         ) -> tuple[ClusterStore, ClusterStore, Entrypoint, dict[str, Any]]:
    """Two regions and an entrypoint whose DestinationRule is the returned dict (edit it to reconfigure)."""
    east_store, west_store = simple_cluster(policy), simple_cluster(policy)
    rule = destination_rule(policy)
    regions = [RegionalService(EAST, east_store, "payments"), RegionalService(WEST, west_store, "payments")]
    entrypoint = Entrypoint(regions, lambda: rule, clock=clock or FakeClock())
    return east_store, west_store, entrypoint, rule


def ask(entrypoint: Entrypoint) -> tuple[int, str | None]:
    response = entrypoint.handle(Request("GET", "/healthz", {}))
    return response.status, response.headers.get("x-served-region")


def test_the_entrypoint_fails_over_after_exactly_consecutive_5xx_errors_and_fails_back() -> None:
    outlier = {"consecutive5xxErrors": 3, "baseEjectionTime": "300ms", "maxEjectionPercent": 100}
    east_store, west_store = simple_cluster(), simple_cluster()
    regions = [RegionalService(EAST, east_store, "payments"), RegionalService(WEST, west_store, "payments")]
    rule = destination_rule(failover_policy(outlier))
    with Entrypoint(regions, lambda: rule) as entrypoint:
        assert served_by(get(entrypoint.url)) == EAST
        set_fault(east_store, abort(503, 100))

        failures = [get(entrypoint.url) for _ in range(3)]
        failed_over = get(entrypoint.url)
        set_fault(east_store, None)
        answers = []
        for _ in range(60):  # the ejection is 0.3 s; bounded at about 3 s
            answers.append(served_by(get(entrypoint.url)))
            if answers[-1] == EAST:
                break
            time.sleep(0.05)

    assert [(status, served_by((status, h, b))) for status, h, b in failures] == [(503, None)] * 3
    assert (failed_over[0], served_by(failed_over)) == (200, WEST)
    assert answers[-1] == EAST
    assert set(answers[:-1]) <= {WEST}


def test_the_default_threshold_is_five_consecutive_5xx() -> None:
    east_store, _, entrypoint, _ = pair(failover_policy({}))
    set_fault(east_store, abort(503, 100))

    answers = [ask(entrypoint) for _ in range(6)]

    assert answers == [(503, None)] * 5 + [(200, WEST)]


def test_without_outlier_detection_the_entrypoint_never_fails_over() -> None:
    east_store, _, entrypoint, _ = pair(failover_policy(None))
    set_fault(east_store, abort(503, 100))

    answers = [ask(entrypoint) for _ in range(30)]

    assert answers == [(503, None)] * 30
    assert entrypoint.ejected() == []


def test_a_success_resets_the_consecutive_5xx_count() -> None:
    east_store, _, entrypoint, _ = pair(failover_policy({"consecutive5xxErrors": 3}))
    set_fault(east_store, abort(503, 100))
    assert [ask(entrypoint) for _ in range(2)] == [(503, None)] * 2
    set_fault(east_store, None)
    assert ask(entrypoint) == (200, EAST)
    set_fault(east_store, abort(503, 100))

    answers = [ask(entrypoint) for _ in range(4)]

    assert answers == [(503, None)] * 3 + [(200, WEST)]


def test_an_ejection_lasts_base_ejection_time_times_the_number_of_ejections() -> None:
    clock = FakeClock()
    outlier = {"consecutive5xxErrors": 1, "baseEjectionTime": "10s", "interval": "100s"}
    east_store, _, entrypoint, _ = pair(failover_policy(outlier), clock)
    set_fault(east_store, abort(503, 100))
    assert ask(entrypoint) == (503, None)  # first ejection: 10 s

    clock.advance(9.9)
    still_out = ask(entrypoint)
    clock.advance(0.1)
    back_and_failing = ask(entrypoint)  # second ejection: 20 s
    clock.advance(19.9)
    still_out_again = ask(entrypoint)
    clock.advance(0.1)
    set_fault(east_store, None)
    back_again = ask(entrypoint)

    assert still_out == (200, WEST)
    assert back_and_failing == (503, None)
    assert still_out_again == (200, WEST)
    assert back_again == (200, EAST)


def test_the_ejection_multiplier_shrinks_by_one_per_healthy_interval() -> None:
    clock = FakeClock()
    outlier = {"consecutive5xxErrors": 1, "baseEjectionTime": "10s", "interval": "1s"}
    east_store, _, entrypoint, _ = pair(failover_policy(outlier), clock)
    set_fault(east_store, abort(503, 100))
    ask(entrypoint)
    clock.advance(10)
    set_fault(east_store, None)
    assert ask(entrypoint) == (200, EAST)
    clock.advance(5)  # five healthy intervals
    set_fault(east_store, abort(503, 100))
    ask(entrypoint)  # ejected again, for 10 s rather than 20 s

    clock.advance(10)
    set_fault(east_store, None)

    assert ask(entrypoint) == (200, EAST)


def test_the_ejection_time_is_capped_at_max_ejection_time() -> None:
    clock = FakeClock()
    outlier = {"consecutive5xxErrors": 1, "baseEjectionTime": "10s", "maxEjectionTime": "15s",
               "interval": "100s"}
    east_store, _, entrypoint, _ = pair(failover_policy(outlier), clock)
    set_fault(east_store, abort(503, 100))
    ask(entrypoint)
    clock.advance(10)
    ask(entrypoint)  # second ejection would be 20 s; capped at 15 s

    clock.advance(15)
    set_fault(east_store, None)

    assert ask(entrypoint) == (200, EAST)


def test_max_ejection_percent_still_lets_one_region_be_ejected_but_no_more() -> None:
    east_store, west_store, entrypoint, _ = pair(failover_policy({"consecutive5xxErrors": 2}))
    set_fault(east_store, abort(503, 100))
    set_fault(west_store, abort(500, 100))

    answers = [ask(entrypoint)[0] for _ in range(8)]

    assert answers == [503, 503] + [500] * 6
    assert entrypoint.ejected() == [EAST]


def test_with_every_region_ejected_the_entrypoint_panics_to_the_first_by_priority() -> None:
    outlier = {"consecutive5xxErrors": 2, "maxEjectionPercent": 100}
    east_store, west_store, entrypoint, _ = pair(failover_policy(outlier))
    set_fault(east_store, abort(503, 100))
    set_fault(west_store, abort(500, 100))

    answers = [ask(entrypoint)[0] for _ in range(5)]

    assert answers == [503, 503, 500, 500, 503]
    assert entrypoint.ejected() == [EAST, WEST]


def test_removing_outlier_detection_from_the_rule_ends_every_ejection() -> None:
    east_store, _, entrypoint, rule = pair(failover_policy({"consecutive5xxErrors": 1}))
    set_fault(east_store, abort(503, 100))
    ask(entrypoint)
    assert ask(entrypoint) == (200, WEST)

    del rule["spec"]["trafficPolicy"]["outlierDetection"]

    assert ask(entrypoint) == (503, None)
    assert entrypoint.ejected() == []


def test_an_edit_of_the_failover_order_applies_on_the_next_request() -> None:
    _, _, entrypoint, rule = pair(failover_policy({}))
    assert ask(entrypoint) == (200, EAST)

    rule["spec"]["trafficPolicy"] = failover_policy({}, first=WEST, then=EAST)

    assert ask(entrypoint) == (200, WEST)


def test_active_active_spreads_requests_round_robin_over_both_regions() -> None:
    policy = {"outlierDetection": {"consecutive5xxErrors": 3}}
    east_store, west_store = simple_cluster(), simple_cluster()
    regions = [RegionalService(EAST, east_store, "payments"), RegionalService(WEST, west_store, "payments")]
    rule = destination_rule(policy)
    with Entrypoint(regions, lambda: rule) as entrypoint:
        served = [served_by(get(entrypoint.url)) for _ in range(10)]

    assert served == [EAST, WEST] * 5


def test_active_active_sends_everything_to_the_survivor_once_a_region_is_ejected() -> None:
    east_store, _, entrypoint, _ = pair({"outlierDetection": {"consecutive5xxErrors": 2}})
    set_fault(east_store, abort(503, 100))

    answers = [ask(entrypoint) for _ in range(8)]

    assert answers[:4] == [(503, None), (200, WEST), (503, None), (200, WEST)]
    assert answers[4:] == [(200, WEST)] * 4


def test_concurrent_probes_eject_a_failing_primary_once_and_then_all_reach_the_standby() -> None:
    outlier = {"consecutive5xxErrors": 3, "baseEjectionTime": "30s"}
    east_store, west_store = simple_cluster(), simple_cluster()
    regions = [RegionalService(EAST, east_store, "payments"), RegionalService(WEST, west_store, "payments")]
    rule = destination_rule(failover_policy(outlier))
    set_fault(east_store, abort(503, 100))
    with Entrypoint(regions, lambda: rule) as entrypoint, ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: get(entrypoint.url), range(80)))
        after = get(entrypoint.url)
        ejected = entrypoint.ejected()

    failures = [a for a in answers if a[0] != 200]
    assert all((a[0], served_by(a)) == (503, None) for a in failures)
    assert 3 <= len(failures) <= 3 + 7  # at most one in-flight request per other worker
    assert {served_by(a) for a in answers if a[0] == 200} == {WEST}
    assert served_by(after) == WEST
    assert ejected == [EAST]


# -- SandboxMesh ------------------------------------------------------------------------------------------
def load_spec(change: Any = None) -> DrillSpec:
    document = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    if change is not None:
        change(document)
    return parse_spec(document)


def get_host(resolve: dict[str, str], host: str) -> tuple[int, dict[str, str], bytes]:
    """GET a spec host on its loopback server with its Host header, as curl --resolve would."""
    return get(f"http://{resolve[host + ':80']}", "/healthz", headers={"Host": host})


def test_the_active_passive_mesh_starts_serves_every_spec_host_and_stops_cleanly() -> None:
    spec = load_spec()
    mesh = SandboxMesh.from_spec(spec, MESH_DIR, seed=3)

    with mesh:
        environment = mesh.environment()
        resolve = json.loads(environment[ENV_RESOLVE])
        clusters = json.loads(environment[ENV_CLUSTERS])
        answers = {host: get_host(resolve, host)
                   for host in ("use1.payments.sandbox", "usw2.payments.sandbox", "payments.sandbox")}
        unauthenticated = get(clusters["payments-use1"], f"/apis/networking.istio.io/v1/namespaces/{NS}"
                              "/virtualservices/payments")
    mesh.stop()  # a second stop is harmless

    assert set(resolve) == {"use1.payments.sandbox:80", "usw2.payments.sandbox:80", "payments.sandbox:80"}
    assert all(target.startswith("127.0.0.1:") for target in resolve.values())
    assert set(clusters) == {"payments-use1", "payments-usw2"} == set(mesh.stores)
    assert set(mesh.regional) == {EAST, WEST}
    assert environment[ENV_TOKEN]
    assert served_by(answers["use1.payments.sandbox"]) == EAST
    assert served_by(answers["usw2.payments.sandbox"]) == WEST
    assert served_by(answers["payments.sandbox"]) == EAST
    assert unauthenticated[0] == 401
    for target in resolve.values():
        with pytest.raises(urllib.error.URLError):
            _OPENER.open(f"http://{target}/healthz", timeout=1)


def test_a_fault_patched_through_the_fake_kubernetes_api_is_obeyed_by_the_next_request() -> None:
    from kubernetes import client

    with SandboxMesh.from_spec(load_spec(), MESH_DIR, seed=4) as mesh:
        environment = mesh.environment()
        resolve = json.loads(environment[ENV_RESOLVE])
        configuration = client.Configuration()
        configuration.host = json.loads(environment[ENV_CLUSTERS])["payments-use1"]
        configuration.api_key["authorization"] = environment[ENV_TOKEN]
        configuration.api_key_prefix["authorization"] = "Bearer"
        api = client.CustomObjectsApi(client.ApiClient(configuration))
        before = mesh.snapshot()
        current: Any = api.get_namespaced_custom_object("networking.istio.io", "v1", NS, "virtualservices",
                                                         "payments")
        http = copy.deepcopy(current["spec"]["http"])
        http[0]["fault"] = abort(503, 100)

        api.patch_namespaced_custom_object("networking.istio.io", "v1", NS, "virtualservices", "payments",
                                           {"spec": {"http": http}})
        region = get_host(resolve, "use1.payments.sandbox")
        through_entrypoint = [get_host(resolve, "payments.sandbox") for _ in range(4)]
        after = mesh.snapshot()

    assert (region[0], region[2]) == (503, FAULT_ABORT)
    # the seed's DestinationRule ejects after 3 consecutive 5xx and fails over to us-west-2
    assert [(a[0], served_by(a)) for a in through_entrypoint] == [(503, None)] * 3 + [(200, WEST)]
    assert before["payments-use1"][VS_KEY] != after["payments-use1"][VS_KEY]
    assert before["payments-usw2"] == after["payments-usw2"]


def pattern_spec(name: str) -> DrillSpec:
    return parse_spec(yaml.safe_load((SPEC_FILE.parent / f"{name}.yaml").read_text(encoding="utf-8")))


def test_the_active_active_mesh_spreads_the_entrypoint_over_both_regions() -> None:
    with SandboxMesh.from_spec(pattern_spec("active-active"), MESH_DIR) as mesh:
        resolve = mesh.resolve()
        served = Counter(served_by(get_host(resolve, "payments.sandbox")) for _ in range(10))

    assert served == {EAST: 5, WEST: 5}


@pytest.mark.parametrize("name", ["canary", "blue-green"])
def test_the_shift_meshes_serve_only_v1_until_the_weights_change(name: str) -> None:
    spec = pattern_spec(name)
    with SandboxMesh.from_spec(spec, MESH_DIR) as mesh:
        resolve = mesh.resolve()
        before = Counter(get_host(resolve, "payments.sandbox")[1].get("x-version") for _ in range(20))
        weights = spec.fault.weights or {}

        def shift(vs: dict[str, Any]) -> None:
            for destination in vs["spec"]["http"][0]["route"]:
                destination["weight"] = weights[destination["destination"]["subset"]]

        edit(next(iter(mesh.stores.values())), VS_KEY, shift)
        after = Counter(get_host(resolve, "payments.sandbox")[1].get("x-version") for _ in range(100))

    assert before == {"v1": 20}
    assert after["v2"] == (100 if name == "blue-green" else pytest.approx(20, abs=15))


def test_the_broken_failover_mesh_never_fails_over() -> None:
    with SandboxMesh.from_spec(pattern_spec("broken-failover"), MESH_DIR) as mesh:
        set_fault(mesh.stores["payments-broken-use1"], abort(503, 100))
        answers = [get_host(mesh.resolve(), "payments.sandbox")[0] for _ in range(12)]
        ejected = mesh.entrypoint.ejected()

    assert answers == [503] * 12
    assert ejected == []


def test_a_region_on_an_eks_cluster_is_named_in_the_error() -> None:
    spec = load_spec(lambda doc: doc["regions"][1].update(cluster={"eks": "payments-usw2", "region": "us-west-2"}))

    with pytest.raises(InvalidDrillSpec, match=r"regions\.1\.cluster: region 'us-west-2' names an EKS cluster"):
        SandboxMesh.from_spec(spec, MESH_DIR)


def test_a_sandbox_cluster_without_a_seed_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidDrillSpec, match=r"no seed file .*payments-use1\.yaml"):
        SandboxMesh.from_spec(load_spec(), tmp_path)

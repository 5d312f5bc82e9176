"""The Kubernetes API stand-in over HTTP: paging, watches, Leases, Status errors, faults, log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from kaput_not_standins.kube import (
    CREATE_LEASE,
    GET_LEASE,
    LIST_NODES,
    UPDATE_LEASE,
    WATCH_NODES,
    KubeApiServer,
)

NODES = "/api/v1/nodes"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
RENEW = "2027-01-15T08:00:00.000000Z"


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer(bookmark_interval=0.1) as server:
        yield server


@pytest.fixture
async def http(kube: KubeApiServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=kube.base_url, timeout=5, trust_env=False) as client:
        yield client


def seed(kube: KubeApiServer, count: int) -> None:
    for index in range(count):
        kube.state.create_node(f"node-{index:02d}", pod_cidrs=(f"10.244.{index}.0/24",))


def watch_params(rv: str, *, bookmarks: bool = False, timeout: int = 30) -> dict[str, str]:
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": str(timeout)}
    if bookmarks:
        params["allowWatchBookmarks"] = "true"
    return params


async def events(response: httpx2.Response, count: int | None = None) -> list[dict[str, Any]]:
    """Decoded watch events until ``count`` arrived, or until the stream ends."""
    seen: list[dict[str, Any]] = []
    async for line in response.aiter_lines():
        if line:
            seen.append(json.loads(line))
        if count is not None and len(seen) == count:
            break
    return seen


async def until(condition, within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)


def lease_body(holder: str, rv: str = "", **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "kaput-not"}
    if rv:
        metadata["resourceVersion"] = rv
    spec = {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": RENEW, **spec}
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def status_of(answer: httpx2.Response) -> dict[str, Any]:
    """The Status body after checking its shape and that its code is the HTTP status."""
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert body["code"] == answer.status_code
    assert "metadata" in body
    return body


# -- paged lists -------------------------------------------------------------------------------


async def test_lists_come_in_pages_sorted_by_name(kube, http):
    seed(kube, 5)
    first = (await http.get(NODES, params={"limit": 2})).json()
    second = (
        await http.get(NODES, params={"limit": 2, "continue": first["metadata"]["continue"]})
    ).json()
    third = (
        await http.get(NODES, params={"limit": 2, "continue": second["metadata"]["continue"]})
    ).json()
    names = [
        [item["metadata"]["name"] for item in page["items"]] for page in (first, second, third)
    ]
    assert names == [["node-00", "node-01"], ["node-02", "node-03"], ["node-04"]]
    assert first["kind"] == "NodeList"
    assert first["metadata"]["remainingItemCount"] == 3
    assert third["metadata"] == {"resourceVersion": kube.state.resource_version}
    assert "kind" not in first["items"][0]  # list items carry no kind, as on a real server


async def test_later_pages_show_the_first_pages_snapshot(kube, http):
    seed(kube, 4)
    first = (await http.get(NODES, params={"limit": 2})).json()
    kube.state.update_node("node-03", labels={"changed": "yes"})
    kube.state.delete_node("node-02")
    kube.state.create_node("node-99")
    rest = (
        await http.get(NODES, params={"limit": 10, "continue": first["metadata"]["continue"]})
    ).json()
    fresh = (await http.get(NODES)).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["node-02", "node-03"]
    assert "changed" not in rest["items"][1]["metadata"]["labels"]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in fresh["items"]] == [
        "node-00",
        "node-01",
        "node-03",
        "node-99",
    ]


async def test_a_continue_token_older_than_the_history_is_410_expired(kube, http):
    seed(kube, 3)
    first = (await http.get(NODES, params={"limit": 1})).json()
    kube.state.create_node("node-10")
    kube.state.compact()
    expired = await http.get(NODES, params={"limit": 1, "continue": first["metadata"]["continue"]})
    body = status_of(expired)
    assert (expired.status_code, body["reason"]) == (410, "Expired")
    assert body["message"].startswith("The provided continue parameter is too old")
    inconsistent = body["metadata"]["continue"]  # continues from the newest state
    rest = (await http.get(NODES, params={"continue": inconsistent})).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["node-01", "node-02", "node-10"]


async def test_resource_version_zero_ignores_the_limit(kube, http):
    seed(kube, 3)
    page = (await http.get(NODES, params={"limit": 1, "resourceVersion": "0"})).json()
    assert len(page["items"]) == 3
    assert "continue" not in page["metadata"]


async def test_bad_list_parameters_are_400(http):
    # A label selector is served since issue 20; one that does not parse is still a 400.
    for params in ({"limit": "ten"}, {"continue": "garbage!"}, {"labelSelector": "a in b"}):
        answer = await http.get(NODES, params=params)
        assert (answer.status_code, status_of(answer)["reason"]) == (400, "BadRequest"), params


async def test_label_selector_on_the_node_list_keeps_the_matching_nodes(kube, http):
    """Issue 20: NODE_SELECTOR is sent as labelSelector; the stand-in filters as the server."""
    kube.state.create_node("cp", labels={"node-role.kubernetes.io/control-plane": ""})
    kube.state.create_node("w1", labels={"zone": "a"})
    kube.state.create_node("w2", labels={"zone": "b"})
    for selector, names in (
        ("!node-role.kubernetes.io/control-plane", ["w1", "w2"]),
        ("zone in (a, c)", ["w1"]),
        ("zone notin (a),zone!=c", ["cp", "w2"]),
        ("zone", ["w1", "w2"]),
    ):
        page = (await http.get(NODES, params={"labelSelector": selector})).json()
        assert [item["metadata"]["name"] for item in page["items"]] == names, selector


# -- watches -----------------------------------------------------------------------------------


async def test_a_watch_replays_changes_after_its_version_in_order(kube, http):
    seed(kube, 2)
    listed = (await http.get(NODES)).json()["metadata"]["resourceVersion"]
    kube.state.create_node("node-05")
    kube.state.update_node("node-00", labels={"tier": "edge"})
    gone = kube.state.delete_node("node-01")
    async with http.stream("GET", NODES, params=watch_params(listed)) as response:
        seen = await events(response, 3)
    assert response.headers["content-type"] == "application/json"
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "node-05"),
        ("MODIFIED", "node-00"),
        ("DELETED", "node-01"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in seen]
    assert versions == sorted(versions)
    assert versions[0] > int(listed)
    deleted = seen[2]["object"]
    assert deleted["metadata"]["resourceVersion"] == gone.resource_version  # the deletion's
    assert deleted["spec"]["podCIDRs"] == ["10.244.1.0/24"]  # the last state
    assert (deleted["kind"], deleted["apiVersion"]) == ("Node", "v1")


async def test_a_selector_watch_turns_leaving_into_deleted_and_joining_into_added(kube, http):
    """Issue 20: as the real server, a node whose labels stop matching the watch's selector
    comes as DELETED, one that starts matching as ADDED; the rest is not shown."""
    kube.state.create_node("w1", labels={"pool": "mesh"})
    kube.state.create_node("w2", labels={"pool": "other"})
    listed = (await http.get(NODES)).json()["metadata"]["resourceVersion"]
    kube.state.update_node("w2", labels={"pool": "other", "x": "1"})  # not shown
    kube.state.update_node("w1", labels={"pool": "mesh", "x": "1"})
    kube.state.update_node("w1", labels={"pool": "other"})
    kube.state.update_node("w2", labels={"pool": "mesh"})
    kube.state.delete_node("w2")
    params = {**watch_params(listed), "labelSelector": "pool=mesh"}
    async with http.stream("GET", NODES, params=params) as response:
        seen = await events(response, 4)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("MODIFIED", "w1"),
        ("DELETED", "w1"),
        ("ADDED", "w2"),
        ("DELETED", "w2"),
    ]


async def test_a_watch_without_a_version_starts_with_every_node_added(kube, http):
    seed(kube, 2)
    async with http.stream("GET", NODES, params=watch_params("")) as response:
        seen = await events(response, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "node-00"),
        ("ADDED", "node-01"),
    ]


async def test_live_changes_reach_an_open_watch(kube, http):
    rv = kube.state.resource_version
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        await until(lambda: kube.open_watches == 1)
        kube.state.create_node("late", pod_cidrs=("10.244.7.0/24",))
        (event,) = await events(response, 1)
    assert (event["type"], event["object"]["spec"]["podCIDR"]) == ("ADDED", "10.244.7.0/24")
    await until(lambda: kube.open_watches == 0)


async def test_bookmarks_carry_the_newest_cluster_version(kube, http):
    seed(kube, 1)
    rv = kube.state.resource_version
    kube.state.put_lease("kube-system", "other", {"holderIdentity": "x"})  # moves the counter
    async with http.stream("GET", NODES, params=watch_params(rv, bookmarks=True)) as response:
        (event,) = await events(response, 1)
    assert event == {
        "type": "BOOKMARK",
        "object": {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": kube.state.resource_version, "creationTimestamp": None},
            "spec": {},
            "status": {
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": event["object"]["status"]["nodeInfo"],
            },
        },
    }
    assert set(event["object"]["status"]["nodeInfo"].values()) == {""}


async def test_timeout_seconds_ends_the_stream_cleanly_without_bookmarks_unless_allowed(kube, http):
    rv = kube.state.resource_version
    started = asyncio.get_running_loop().time()
    async with http.stream("GET", NODES, params=watch_params(rv, timeout=1)) as response:
        seen = await events(response)  # ends without a transport error
    elapsed = asyncio.get_running_loop().time() - started
    assert seen == []  # bookmarks every 0.1 s were not allowed
    assert 0.9 < elapsed < 2.0


async def test_a_compacted_version_gets_a_410_error_event_by_default(kube, http):
    seed(kube, 2)
    kube.state.compact()
    async with http.stream("GET", NODES, params=watch_params("2")) as response:
        seen = await events(response)
    assert response.status_code == 200
    (event,) = seen  # and then the stream ended
    assert event["type"] == "ERROR"
    assert event["object"] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: 2 ({kube.state.resource_version})",
        "reason": "Expired",
        "code": 410,
    }


async def test_a_compacted_version_can_be_a_plain_http_410():
    async with KubeApiServer(expired_answer="status") as kube:
        kube.state.create_node("a")
        kube.state.compact()
        async with httpx2.AsyncClient(base_url=kube.base_url, trust_env=False) as http:
            answer = await http.get(NODES, params=watch_params("1"))
    assert (answer.status_code, status_of(answer)["reason"]) == (410, "Expired")


async def test_an_open_watch_survives_a_compaction(kube, http):
    rv = kube.state.resource_version
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        await until(lambda: kube.open_watches == 1)
        kube.state.compact()
        kube.state.create_node("after")
        (event,) = await events(response, 1)
    assert event["object"]["metadata"]["name"] == "after"


async def test_a_watch_behind_the_history_limit_gets_410_live_and_at_start():
    async with (
        KubeApiServer(history_limit=2) as kube,
        httpx2.AsyncClient(base_url=kube.base_url, timeout=5, trust_env=False) as http,
    ):
        rv = kube.state.resource_version
        async with http.stream("GET", NODES, params=watch_params(rv)) as response:
            await until(lambda: kube.open_watches == 1)
            for name in ("a", "b", "c"):  # no await in between: the watch cannot keep up
                kube.state.create_node(name)
            live = await events(response)
        async with http.stream("GET", NODES, params=watch_params(rv)) as response:
            late = await events(response)
    assert [(e["type"], e["object"]["code"]) for e in live] == [("ERROR", 410)]
    assert late[0]["object"]["message"] == f"too old resource version: {rv} ({int(rv) + 1})"


# -- leases ------------------------------------------------------------------------------------


async def test_a_lease_is_created_read_and_updated_with_new_versions(http):
    created = await http.post(LEASES, json=lease_body("pod-a"))
    stored = created.json()
    read = (await http.get(f"{LEASES}/kaput-not")).json()
    stored["spec"]["holderIdentity"] = "pod-b"
    updated = await http.put(f"{LEASES}/kaput-not", json=stored)
    assert created.status_code == 201
    assert read == created.json()
    assert read["metadata"]["namespace"] == "kube-system"
    assert read["spec"] == {
        "holderIdentity": "pod-a",
        "leaseDurationSeconds": 15,
        "renewTime": RENEW,
    }
    assert updated.status_code == 200
    after = updated.json()
    assert after["spec"]["holderIdentity"] == "pod-b"
    assert int(after["metadata"]["resourceVersion"]) > int(read["metadata"]["resourceVersion"])
    assert after["metadata"]["uid"] == read["metadata"]["uid"]


async def test_an_update_with_a_stale_version_is_409_conflict(kube, http):
    first = (await http.post(LEASES, json=lease_body("pod-a"))).json()
    rv = first["metadata"]["resourceVersion"]
    assert (await http.put(f"{LEASES}/kaput-not", json=lease_body("pod-b", rv))).status_code == 200
    stale = await http.put(f"{LEASES}/kaput-not", json=lease_body("pod-c", rv))
    body = status_of(stale)
    assert (stale.status_code, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "kaput-not": the object has'
        " been modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {
        "name": "kaput-not",
        "group": "coordination.k8s.io",
        "kind": "leases",
    }
    assert kube.state.lease("kube-system", "kaput-not")["spec"]["holderIdentity"] == "pod-b"


async def test_creating_an_existing_lease_is_409_already_exists(http):
    await http.post(LEASES, json=lease_body("pod-a"))
    again = await http.post(LEASES, json=lease_body("pod-b"))
    body = status_of(again)
    assert (again.status_code, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'leases.coordination.k8s.io "kaput-not" already exists'


async def test_a_missing_lease_is_404_not_found_exactly_as_kubernetes_says_it(http):
    answer = await http.get(f"{LEASES}/nobody")
    assert answer.status_code == 404
    assert answer.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'leases.coordination.k8s.io "nobody" not found',
        "reason": "NotFound",
        "details": {"name": "nobody", "group": "coordination.k8s.io", "kind": "leases"},
        "code": 404,
    }


async def test_creating_in_a_missing_namespace_is_404(http):
    answer = await http.post(
        "/apis/coordination.k8s.io/v1/namespaces/nowhere/leases", json=lease_body("a")
    )
    assert status_of(answer)["message"] == 'namespaces "nowhere" not found'


async def test_put_creates_a_missing_lease_but_an_update_needs_a_version(http):
    created = await http.put(f"{LEASES}/kaput-not", json=lease_body("pod-a"))
    unversioned = await http.put(f"{LEASES}/kaput-not", json=lease_body("pod-b"))
    assert created.status_code == 201
    assert unversioned.status_code == 422
    assert status_of(unversioned)["message"].endswith(
        "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    )


@pytest.mark.parametrize(
    ("spec", "code", "text"),
    [
        (
            {"leaseDurationSeconds": 0},
            422,
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        ),
        ({"leaseTransitions": -1}, 422, "spec.leaseTransitions: Invalid value: -1"),
        ({"renewTime": "2027-01-15T08:00:00Z"}, 400, "cannot be handled as a Lease"),
        ({"leaseDurationSeconds": "15"}, 400, "cannot unmarshal string"),
    ],
    ids=["zero-duration", "negative-transitions", "time-without-microseconds", "string-duration"],
)
async def test_invalid_lease_specs_are_rejected(http, spec, code, text):
    answer = await http.post(LEASES, json=lease_body("pod-a", **spec))
    assert answer.status_code == code
    assert text in status_of(answer)["message"]


async def test_creating_with_a_resource_version_is_the_servers_bare_500(http):
    answer = await http.post(LEASES, json=lease_body("pod-a", rv="7"))
    body = status_of(answer)
    assert answer.status_code == 500
    assert "reason" not in body
    assert body["message"] == "resourceVersion should not be set on objects to be created"


# -- auth and routing ------------------------------------------------------------------------


async def test_a_configured_token_is_required():
    async with (
        KubeApiServer(token="s3cret") as kube,
        httpx2.AsyncClient(base_url=kube.base_url, trust_env=False) as http,
    ):
        wrong = await http.get(NODES, headers={"Authorization": "Bearer nope"})
        missing = await http.get(NODES)
        right = await http.get(NODES, headers={"Authorization": "Bearer s3cret"})
    assert wrong.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    assert missing.status_code == 401
    assert right.status_code == 200


async def test_unknown_paths_are_404_and_unserved_methods_405(http):
    unknown = await http.get("/api/v1/pods")
    wrong_method = await http.delete(f"{NODES}/x")
    assert (unknown.status_code, status_of(unknown)["reason"]) == (404, "NotFound")
    assert (wrong_method.status_code, status_of(wrong_method)["reason"]) == (
        405,
        "MethodNotAllowed",
    )


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "TooManyRequests")],
)
async def test_failing_the_next_requests_of_a_route(kube, http, code, reason):
    kube.faults.fail(LIST_NODES, code, times=2)
    answers = [await http.get(NODES) for _ in range(3)]
    assert [a.status_code for a in answers] == [code, code, 200]
    assert status_of(answers[0])["reason"] == reason
    if code == 429:
        assert answers[0].headers["retry-after"] == "1"
        assert answers[0].json()["details"] == {"retryAfterSeconds": 1}


async def test_an_after_fault_applies_the_write_and_loses_the_answer(kube, http):
    kube.faults.fail(CREATE_LEASE, 503, when="after")
    lost = await http.post(LEASES, json=lease_body("pod-a"))
    assert lost.status_code == 503
    assert kube.state.lease("kube-system", "kaput-not") is not None


async def test_a_hung_route_never_answers(kube, http):
    kube.faults.hang(GET_LEASE)
    with pytest.raises(httpx2.ReadTimeout):
        await http.get(f"{LEASES}/kaput-not", timeout=0.2)
    assert (await http.get(NODES)).status_code == 200  # other routes still answer


async def test_a_reset_route_aborts_the_connection(kube, http):
    kube.faults.reset(UPDATE_LEASE)
    with pytest.raises(httpx2.TransportError):
        await http.put(f"{LEASES}/kaput-not", json=lease_body("pod-a"))


async def test_drop_watches_cuts_open_streams_mid_body(kube, http):
    rv = kube.state.resource_version
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        await until(lambda: kube.open_watches == 1)
        assert kube.faults.drop_watches() == 1
        with pytest.raises(httpx2.RemoteProtocolError):
            await events(response)
    await until(lambda: kube.open_watches == 0)


@pytest.mark.parametrize("answer", ["event", "status"])
async def test_the_next_watch_start_can_be_made_to_expire(kube, http, answer):
    kube.faults.expire_next_watch(answer=answer)
    rv = kube.state.resource_version
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        if answer == "status":
            assert response.status_code == 410
        else:
            (event,) = await events(response)
            assert (event["type"], event["object"]["code"]) == ("ERROR", 410)
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        await until(lambda: kube.open_watches == 1)  # the next one opens normally


async def test_an_injected_error_event_reaches_open_watches_which_then_end(kube, http):
    rv = kube.state.resource_version
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        await until(lambda: kube.open_watches == 1)
        assert kube.faults.inject_watch_error(500, message="etcd is sad") == 1
        seen = await events(response)
    assert [e["type"] for e in seen] == ["ERROR"]
    assert seen[0]["object"]["code"] == 500
    assert seen[0]["object"]["reason"] == "InternalError"


async def test_an_unreachable_server_refuses_connections_and_cuts_watches(kube, http):
    rv = kube.state.resource_version
    async with http.stream("GET", NODES, params=watch_params(rv)) as response:
        await until(lambda: kube.open_watches == 1)
        kube.faults.set_reachable(False)
        with pytest.raises(httpx2.TransportError):
            await events(response)
    with pytest.raises(httpx2.ConnectError):
        await http.get(NODES)
    kube.faults.set_reachable(True)
    assert (await http.get(NODES)).status_code == 200


async def test_an_unreachable_server_can_reset_instead(kube, http):
    kube.faults.set_reachable(False, how="reset")
    assert not kube.faults.reachable
    with pytest.raises(httpx2.TransportError) as caught:
        await http.get(NODES)
    assert not isinstance(caught.value, httpx2.ConnectError)  # connected, then reset
    kube.faults.set_reachable(True)
    assert (await http.get(NODES)).status_code == 200


# -- lifecycle and the request log ---------------------------------------------------------------


async def test_stop_with_open_watches_returns_promptly():
    kube = KubeApiServer()
    await kube.start()
    async with (
        httpx2.AsyncClient(base_url=kube.base_url, trust_env=False, timeout=30) as http,
        http.stream("GET", NODES, params=watch_params("")) as response,
    ):
        await until(lambda: kube.open_watches == 1)
        await asyncio.wait_for(kube.stop(), 1)
        with pytest.raises(httpx2.TransportError):
            await events(response)
    assert kube.open_watches == 0
    with pytest.raises(RuntimeError):
        _ = kube.base_url


def test_run_in_thread_serves_synchronous_callers():
    with (
        KubeApiServer().run_in_thread() as kube,
        httpx2.Client(base_url=kube.base_url, trust_env=False, timeout=5) as http,
    ):
        rv = kube.state.resource_version
        with http.stream("GET", NODES, params=watch_params(rv)) as response:
            lines = response.iter_lines()
            for _ in range(200):
                if kube.open_watches:
                    break
                time.sleep(0.01)
            kube.state.create_node("from-another-thread")
            first = json.loads(next(lines))
            assert kube.faults.drop_watches() == 1
        listed = http.get(NODES).json()
    assert first["object"]["metadata"]["name"] == "from-another-thread"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["from-another-thread"]


async def test_the_log_counts_routes_and_keeps_list_and_watch_parameters(kube, http):
    seed(kube, 3)
    first = (await http.get(NODES, params={"limit": 2})).json()
    await http.get(NODES, params={"limit": 2, "continue": first["metadata"]["continue"]})
    rv = first["metadata"]["resourceVersion"]
    async with http.stream("GET", NODES, params=watch_params(rv, bookmarks=True)) as response:
        await events(response, 1)
    await http.get(f"{LEASES}/kaput-not")
    await http.post(LEASES, json=lease_body("a"))
    assert kube.log.counts() == {LIST_NODES: 2, WATCH_NODES: 1, GET_LEASE: 1, CREATE_LEASE: 1}
    lists = kube.log.entries_for(LIST_NODES)
    assert [e.limit for e in lists] == [2, 2]
    assert [e.continue_token is not None for e in lists] == [False, True]
    (watch,) = kube.log.entries_for(WATCH_NODES)
    assert (watch.resource_version, watch.bookmarks, watch.timeout_seconds) == (rv, True, 30)
    assert [e.status for e in kube.log.entries] == [200, 200, 200, 404, 201]
    kube.log.reset()
    assert kube.log.counts() == {}

"""The Kubernetes stand-in's cluster without HTTP: seeding rules, resourceVersions, history."""

from __future__ import annotations

import pytest

from kaput_not_standins.kube import KubeState, StatusError
from kaput_not_standins.kube.paging import decode_token, encode_token


@pytest.fixture
def state() -> KubeState:
    return KubeState(clock=lambda: 1_800_000_000.0)


def test_pod_cidrs_can_be_set_on_a_node_without_them(state):
    state.create_node("n1")
    node = state.update_node("n1", pod_cidrs=("10.244.1.0/24", "fd00:1::/64"))
    spec = node.to_dict()["spec"]
    assert spec["podCIDR"] == "10.244.1.0/24"
    assert spec["podCIDRs"] == ["10.244.1.0/24", "fd00:1::/64"]


@pytest.mark.parametrize(
    "new",
    [("10.244.9.0/24",), (), ("10.244.1.0/24", "fd00:1::/64")],
    ids=["changed", "removed", "added-a-family"],
)
def test_pod_cidrs_once_set_can_never_change(state, new):
    state.create_node("n1", pod_cidrs=("10.244.1.0/24",))
    with pytest.raises(StatusError) as caught:
        state.update_node("n1", pod_cidrs=new)
    error = caught.value
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.message == (
        'Node "n1" is invalid: spec.podCIDRs: Forbidden: '
        'node updates may not change podCIDR except from "" to valid'
    )
    assert error.details == {
        "name": "n1",
        "kind": "Node",
        "causes": [
            {
                "reason": "FieldValueForbidden",
                "message": 'Forbidden: node updates may not change podCIDR except from "" to valid',
                "field": "spec.podCIDRs",
            }
        ],
    }
    assert state.node("n1").pod_cidrs == ("10.244.1.0/24",)


@pytest.mark.parametrize(
    ("cidrs", "field"),
    [
        (("10.244.1.0/33",), "spec.podCIDRs[0]"),
        (("10.244.1.0/24", "10.244.2.0/24"), "spec.podCIDRs"),
        (("10.1.0.0/24", "fd00::/64", "10.2.0.0/24"), "spec.podCIDRs"),
        (("10.5.0.1/24",), "spec.podCIDRs[0]"),
        (("10.5.0.0/24", "fd00::1/64"), "spec.podCIDRs[1]"),
    ],
    ids=["not-a-cidr", "two-of-one-family", "three", "v4-host-bits", "v6-host-bits"],
)
def test_invalid_pod_cidrs_are_rejected(state, cidrs, field):
    with pytest.raises(StatusError) as caught:
        state.create_node("n1", pod_cidrs=cidrs)
    details = caught.value.details
    assert caught.value.code == 422
    assert details is not None
    assert details["causes"][0]["field"] == field
    assert state.node("n1") is None


def test_node_names_must_be_dns_subdomains(state):
    with pytest.raises(StatusError, match="RFC 1123"):
        state.create_node("Node_1")


def test_create_existing_and_delete_missing_answer_like_the_api(state):
    state.create_node("n1")
    with pytest.raises(StatusError) as exists:
        state.create_node("n1")
    with pytest.raises(StatusError) as missing:
        state.delete_node("n2")
    assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")
    assert (missing.value.code, missing.value.message) == (404, 'nodes "n2" not found')


def test_an_update_that_changes_nothing_is_a_no_op(state):
    node = state.create_node("n1", pod_cidrs=("10.244.1.0/24",), labels={"a": "1"})
    same = state.update_node("n1", labels={"a": "1"}, pod_cidrs=("10.244.1.0/24",))
    assert same is node
    assert state.resource_version == node.resource_version
    assert len(state.history) == 1


def test_an_annotation_edit_is_a_modified_node_with_the_new_annotations(state):
    """A kubelet may edit its own Node's annotations (kaput-not.io/netmaker-host among them)."""
    state.create_node("n1", pod_cidrs=("10.244.1.0/24",), annotations={"a": "1"})
    node = state.update_node("n1", annotations={"kaput-not.io/netmaker-host": "w1"})
    assert node.to_dict()["metadata"]["annotations"]["kaput-not.io/netmaker-host"] == "w1"
    assert "a" not in node.annotations
    assert [e.type for e in state.history.since(0, live=False)][-1] == "MODIFIED"
    assert state.update_node("n1", annotations={"kaput-not.io/netmaker-host": "w1"}) is node


def test_one_resource_version_counter_spans_every_object(state):
    first = state.create_node("n1")
    lease = state.put_lease("kube-system", "kaput-not", {"holderIdentity": "a"})
    second = state.create_node("n2")
    versions = [first.resource_version, lease["metadata"]["resourceVersion"]]
    versions.append(second.resource_version)
    assert [int(v) for v in versions] == [2, 3, 4]
    assert state.resource_version == "4"


def test_a_deleted_node_keeps_its_last_state_under_a_new_version(state):
    state.create_node("n1", pod_cidrs=("10.244.1.0/24",), labels={"role": "edge"})
    gone = state.delete_node("n1")
    assert gone.resource_version == state.resource_version
    assert gone.pod_cidrs == ("10.244.1.0/24",)
    assert dict(gone.labels) == {"role": "edge"}
    assert state.nodes() == []


def test_a_re_created_node_has_a_new_uid(state):
    before = state.create_node("n1")
    state.delete_node("n1")
    after = state.create_node("n1")
    assert before.uid != after.uid


def test_nodes_at_an_older_version_undo_later_changes(state):
    state.create_node("a", pod_cidrs=("10.244.1.0/24",))
    state.create_node("b")
    snapshot_rv = state.current
    state.update_node("b", pod_cidrs=("10.244.2.0/24",))
    state.delete_node("a")
    state.create_node("c")
    old = state.nodes_at(snapshot_rv)
    assert sorted(old) == ["a", "b"]
    assert old["b"].pod_cidrs == ()
    assert sorted(state.nodes_at(state.current)) == ["b", "c"]


def test_compaction_moves_the_horizon_to_now(state):
    state.create_node("a")
    state.create_node("b")
    state.compact()
    assert state.history.horizon == state.current
    assert len(state.history) == 0
    with pytest.raises(StatusError) as caught:
        state.history.since(state.current - 1, live=False)
    assert (caught.value.code, caught.value.reason) == (410, "Expired")


def test_a_history_limit_drops_the_oldest_changes():
    state = KubeState(history_limit=2)
    for name in ("a", "b", "c"):
        state.create_node(name)
    assert len(state.history) == 2
    assert state.history.horizon == 2  # the ADDED of "a" is gone
    assert [e.node.name for e in state.history.since(2, live=False)] == ["b", "c"]


def test_node_objects_are_a_few_kilobytes_like_real_ones(state):
    node = state.create_node("worker-1", pod_cidrs=("10.244.1.0/24",))
    manifest = node.to_dict()
    assert 3_000 < len(node.manifest()) < 8_000
    assert (manifest["kind"], manifest["apiVersion"]) == ("Node", "v1")
    assert set(manifest["metadata"]) >= {"name", "uid", "resourceVersion", "labels"}
    assert manifest["metadata"]["creationTimestamp"] == "2027-01-15T08:00:00Z"
    assert {c["type"] for c in manifest["status"]["conditions"]} >= {"Ready"}
    assert manifest["status"]["addresses"][0]["type"] == "InternalIP"
    assert b'"kind"' not in node.body[:20]  # list items carry no kind


def test_continue_tokens_round_trip_and_look_like_the_servers():
    token = encode_token(42, "n1\x00")
    assert "=" not in token
    assert decode_token(token) == (42, "n1\x00")


@pytest.mark.parametrize("token", ["%%%", "eyJ2IjoieCJ9", encode_token(0, "a")])
def test_malformed_continue_tokens_are_bad_requests(token):
    with pytest.raises(StatusError) as caught:
        decode_token(token)
    assert caught.value.code == 400
    assert caught.value.message.startswith("invalid continue token: continue key is not valid")

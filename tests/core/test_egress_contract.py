"""The egress contract: descriptions, names, ownership and CIDR normalisation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaput_not.core.egress import (
    InvalidCidr,
    Marker,
    build_description,
    check_cluster_name,
    normalize_cidr,
    owned_by,
    parse_description,
    rule_name,
    same_range,
)


def test_description_is_byte_compatible_with_the_go_version():
    assert build_description(0) == "Managed by kaput-not (DO NOT EDIT): index=0"
    assert (
        build_description(1, "us-east")
        == "Managed by kaput-not (DO NOT EDIT): cluster=us-east index=1"
    )


def test_rule_name_counts_from_one():
    assert rule_name("worker-1", 0, 2) == "worker-1 pods (1/2)"
    assert rule_name("worker-1", 1, 2) == "worker-1 pods (2/2)"


@given(
    index=st.integers(0, 999_999),
    cluster=st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")),
)
def test_description_round_trips(index, cluster):
    assert parse_description(build_description(index, cluster)) == Marker(cluster, index)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "managed by kaput-not (do not edit): index=0",
        "Managed by kaput-not: index=0",
        "pods of worker-1",
        "Managed by kaput-not (DO NOT EDIT) index=0",
    ],
)
def test_foreign_descriptions_are_not_ours(text):
    assert parse_description(text) is None


@pytest.mark.parametrize(
    "suffix",
    [
        "index=abc",
        "index=-1",
        "index=1 extra",
        "clusterx=a index=0",
        "index=",
        "",
        "index=0 index=1",
        "colour=red index=0",
        "index=0 cluster=blue",
        "cluster= index=0",
        "index=1234567",
    ],
)
def test_a_damaged_marker_is_foreign(suffix):
    """docs/design.md section 2: ours only if the description parses; issue 9, item 6."""
    assert parse_description("Managed by kaput-not (DO NOT EDIT): " + suffix) is None


def test_ownership_follows_cluster_scope():
    single = parse_description(build_description(0))
    east = parse_description(build_description(0, "east"))
    assert owned_by(single, None)
    assert not owned_by(east, None)
    assert owned_by(east, "east")
    assert not owned_by(east, "west")
    assert not owned_by(single, "east")  # migration safety: never claim unscoped rules
    assert not owned_by(None, None)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("10.42.1.0/24", "10.42.1.0/24"),
        ("10.42.1.7/24", "10.42.1.0/24"),
        (" 10.42.1.0/24 ", "10.42.1.0/24"),
        ("fd00:10:244:1::5/64", "fd00:10:244:1::/64"),
        ("FD00:0010:0244:0001:0000:0000:0000:0000/64", "fd00:10:244:1::/64"),
        ("2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128"),
        ("2001:db8:0:1:1:1:1:1/128", "2001:db8:0:1:1:1:1:1/128"),
    ],
)
def test_cidr_normalised_as_netmaker_stores_it(raw, stored):
    assert normalize_cidr(raw) == stored


@pytest.mark.parametrize("bad", ["10.0.0.1", "10.0.0.0/33", "banana", "", "::ffff:10.0.0.0/120"])
def test_invalid_cidr_is_refused_with_the_value(bad):
    with pytest.raises(InvalidCidr, match="is"):
        normalize_cidr(bad)


@given(st.ip_addresses(), st.data())
def test_normalised_cidr_is_a_fixed_point(address, data):
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return
    prefix = data.draw(st.integers(0, address.max_prefixlen))
    once = normalize_cidr(f"{address}/{prefix}")
    assert normalize_cidr(once) == once
    assert same_range(f"{address}/{prefix}", once)


def test_cluster_names_that_would_not_parse_back_are_refused():
    assert check_cluster_name("us-east.1") == "us-east.1"
    for bad in ["", "two words", "a=b", "-lead", "x" * 64]:
        with pytest.raises(ValueError, match="cluster name"):
            check_cluster_name(bad)

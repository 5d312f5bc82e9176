"""The egress contract: descriptions, names, ownership and CIDR normalisation."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaput_not.core.egress import (
    InvalidCidr,
    Marker,
    _canonical,
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


def _ipaddress_canonical(text: str) -> bool:
    """The slow way's verdict: ipaddress reads `text` and prints it back unchanged."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    mapped = isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped
    return not mapped and network.compressed == text


def _spellings(address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int) -> list[str]:
    """`address/prefix` as ipaddress prints it and in forms it does not print."""
    forms = [str(address), address.exploded, str(address).upper(), f"0{address}"]
    if address.version == 6:
        forms.append(str(ipaddress.IPv6Address(int(address))).replace("::", ":0:", 1))
        forms.append("::" + str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return [f"{form}/{length}" for form in forms for length in (str(prefix), f"0{prefix}")]


def test_the_c_check_of_a_canonical_cidr_agrees_with_ipaddress():
    # Every pattern of zero and non-zero groups of an IPv6 address (where the compression of
    # the C library and of ipaddress could differ), each prefix length that keeps it a network
    # address, and a handful of IPv4 edge cases.
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [
        ipaddress.IPv6Address(sum((0xA0B << 16 * i) for i in range(8) if mask >> i & 1))
        for mask in range(256)
    ]
    addresses += [ipaddress.IPv4Address(a) for a in ("0.0.0.0", "10.244.0.0", "255.255.255.255")]
    addresses += [ipaddress.IPv6Address(a) for a in ("::ffff:0:0", "::ffff:a00:0", "::1:2")]
    checked = 0
    for address in addresses:
        for prefix in range(address.max_prefixlen + 1):
            for text in _spellings(address, prefix):
                assert _canonical(text) <= _ipaddress_canonical(text), text
                checked += _canonical(text)
    assert checked > 1000  # the fast path is taken, not only refused


@given(st.ip_addresses(), st.data())
def test_the_c_check_of_a_canonical_cidr_agrees_with_ipaddress_on_any_address(address, data):
    prefix = data.draw(st.integers(0, address.max_prefixlen))
    for text in _spellings(address, prefix):
        assert _canonical(text) <= _ipaddress_canonical(text), text
    # The usual form takes the fast path: all but the IPv6 addresses the C library prints
    # dotted (::ffff:a.b.c.d, refused, and ::a.b.c.d), which ipaddress decides.
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    if network.version == 4 or int(network.network_address) >> 48 != 0:
        assert _canonical(network.compressed)


def test_cluster_names_that_would_not_parse_back_are_refused():
    assert check_cluster_name("us-east.1") == "us-east.1"
    for bad in ["", "two words", "a=b", "-lead", "x" * 64]:
        with pytest.raises(ValueError, match="cluster name"):
            check_cluster_name(bad)

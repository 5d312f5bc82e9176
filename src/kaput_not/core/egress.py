"""The egress contract: what one kaput-not rule looks like, and how we recognise our own.

Byte-compatible with the Go version, so a cluster switches controllers without churn:

    description  Managed by kaput-not (DO NOT EDIT): index=<i>
                 Managed by kaput-not (DO NOT EDIT): cluster=<name> index=<i>
    name         <node name> pods (<i+1>/<count>)
    range        the pod CIDR as Netmaker stores it (network address, compressed IPv6)

An egress is ours only when its description parses, whole, as one of the two forms above *and*
its cluster scope is ours: no cluster key in single-cluster mode, our exact name in
multi-cluster mode (docs/design.md section 2). Everything else, a damaged marker included
(`index=abc`, `index=-1`, `index=1 extra`, `clusterx=a index=0`), is foreign and is never
written or deleted: a hand-made description that merely starts like ours is not a licence to
delete it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass

MARKER = "Managed by kaput-not (DO NOT EDIT)"
_PREFIX = MARKER + ": "
#: What a cluster name may hold so that the description parses back to the same name.
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_DESCRIPTION = re.compile(
    re.escape(_PREFIX) + rf"(?:cluster=({CLUSTER_NAME.pattern}) )?index=([0-9]{{1,6}})"
)


class InvalidCidr(ValueError):
    """A pod CIDR that is not an IPv4 or IPv6 network in CIDR notation."""


@dataclass(frozen=True, slots=True)
class Marker:
    """What a description says about its rule: cluster scope (None: single-cluster) and index."""

    cluster: str | None
    index: int


def check_cluster_name(name: str) -> str:
    """Return `name` if it can be written into a description and read back unchanged."""
    if not CLUSTER_NAME.fullmatch(name):
        raise ValueError(
            f"cluster name {name!r} is not usable: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@functools.lru_cache(maxsize=256)
def build_description(index: int, cluster: str | None = None) -> str:
    """The marker for pod CIDR `index`; cached, so 20,000 rules share a handful of strings."""
    if cluster:
        return f"{_PREFIX}cluster={cluster} index={index}"
    return f"{_PREFIX}index={index}"


@functools.lru_cache(maxsize=1024)
def parse_description(description: str) -> Marker | None:
    """Read the marker, or None if the description is not exactly one kaput-not writes.

    Only a whole match counts: a rule is ours because we can read every part of what we wrote
    into it. A damaged or extended marker is someone else's edit and stays foreign. Cached:
    20,000 rules carry a handful of descriptions, read on every full pass.
    """
    found = _DESCRIPTION.fullmatch(description)
    if found is None:
        return None
    return Marker(cluster=found.group(1), index=int(found.group(2)))


def owned_by(marker: Marker | None, cluster: str | None) -> bool:
    """Whether a rule with this marker belongs to the controller scoped to `cluster`."""
    return marker is not None and marker.cluster == (cluster or None)


def rule_name(node_name: str, index: int, count: int) -> str:
    return f"{node_name} pods ({index + 1}/{count})"


_RULE_NAME = re.compile(r"(.+) pods \(\d+/\d+\)")


def named_for(name: str) -> str | None:
    """The Kubernetes node a rule of ours was named for (`rule_name`'s form), or None."""
    found = _RULE_NAME.fullmatch(name)
    return found.group(1) if found else None


def normalize_cidr(cidr: str) -> str:
    """The CIDR as Netmaker stores it: host bits cleared, IPv6 compressed and lower case.

    Netmaker runs Go's net.ParseCIDR and prints IPNet.String(); Python's compressed form is the
    same for plain IPv4 and IPv6 networks. IPv4-mapped IPv6 prints differently in Go, and no
    pod CIDR allocator produces it, so it is refused rather than guessed. Not cached: a pass
    reads each pod CIDR once (the planner's index), and a cache would hold every CIDR ever seen.
    """
    text = cidr.strip()
    if _canonical(text):
        return text
    if "/" not in text:
        raise InvalidCidr(f"{cidr!r} is not in CIDR notation (address/prefix-length)")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidCidr(f"{cidr!r} is not a valid CIDR: {exc}") from exc
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        raise InvalidCidr(f"{cidr!r} is an IPv4-mapped IPv6 network; use the IPv4 form")
    # The usual input is canonical already: return it, not an equal copy the rules would keep.
    canonical = network.compressed
    return text if canonical == text else canonical


#: The first 96 bits of an IPv4-mapped IPv6 address (::ffff:0:0/96).
_MAPPED = bytes(10) + b"\xff\xff"


def _canonical(text: str) -> bool:
    """Whether `text` is already in `normalize_cidr`'s form, checked in C (`socket.inet_pton`
    and `inet_ntop`, which print IPv6 as ipaddress does, RFC 5952, except the dotted forms that
    are left to ipaddress): every pass reads every pod CIDR, and ipaddress costs several times
    more. False sends `text` the slow way, which decides."""
    address, slash, length = text.partition("/")
    if not slash or not length.isascii() or not length.isdigit():
        return False
    six = ":" in address
    if six and "." in address:
        return False
    family = socket.AF_INET6 if six else socket.AF_INET
    try:
        packed = socket.inet_pton(family, address)
    except (OSError, ValueError):
        return False
    prefix, bits = int(length), len(packed) * 8
    if prefix > bits or str(prefix) != length or socket.inet_ntop(family, packed) != address:
        return False
    if six and packed[:12] == _MAPPED:
        return False
    return int.from_bytes(packed, "big") & ((1 << (bits - prefix)) - 1) == 0


def same_range(stored: str, wanted: str) -> bool:
    """Compare ranges as networks, so a non-canonical spelling never causes endless updates."""
    if stored == wanted:
        return True  # the usual case: Netmaker stored what we sent, already normalised
    try:
        return normalize_cidr(stored) == normalize_cidr(wanted)
    except InvalidCidr:
        return stored == wanted

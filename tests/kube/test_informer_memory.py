"""What the informer keeps per node stays small: a regression test of memory, not of time.

10,000 realistic Node objects (status, images, conditions: about 4 KB of JSON each) go through
the informer's own decoder and store; what stays allocated afterwards must be a few hundred
bytes per node, never the Node objects themselves (100 MB and more at this size).
"""

from __future__ import annotations

import gc
import json
import tracemalloc

from kaput_not.kube import wire
from kaput_not.kube.informer import _stored

COUNT = 10_000
#: Measured about 510 bytes per node (name, uid, resourceVersion, two CIDRs, the record);
#: a full Node would be about 30 times that.
LIMIT_PER_NODE = 1_200


def node_json(i: int) -> bytes:
    image = {
        "names": [f"registry.example.com/team/app-{i % 50}@sha256:" + "ab" * 32],
        "sizeBytes": 1,
    }
    condition = {
        "type": "Ready",
        "status": "True",
        "lastHeartbeatTime": "2026-11-30T00:00:00Z",
        "lastTransitionTime": "2026-11-30T00:00:00Z",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status. AppArmor enabled",
    }
    node = {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": f"node-{i:05d}",
            "uid": f"6f1c2d3e-{i:04x}-4a5b-8c9d-0e1f2a3b4c5d",
            "resourceVersion": str(1000 + i),
            "labels": {"kubernetes.io/hostname": f"node-{i:05d}", "kubernetes.io/os": "linux"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/x": "true"},
        },
        "spec": {
            "podCIDR": f"10.{i // 256}.{i % 256}.0/24",
            "podCIDRs": [f"10.{i // 256}.{i % 256}.0/24", f"fd00:{i:x}::/64"],
        },
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "31Gi", "pods": "110"},
            "conditions": [condition] * 5,
            "addresses": [{"type": "InternalIP", "address": f"192.0.2.{i % 250}"}],
            "nodeInfo": {"kubeletVersion": "v1.36.3", "osImage": "Debian GNU/Linux 12"},
            "images": [image] * 17,
        },
    }
    return json.dumps(node).encode()


def test_ten_thousand_nodes_keep_a_few_hundred_bytes_each():
    assert len(node_json(0)) > 4_000  # as big as a real node
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    store = {}
    for i in range(COUNT):
        stored = _stored(wire.node_decoder.decode(node_json(i)))
        store[stored.node.name] = stored
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_node = held / COUNT
    assert per_node < LIMIT_PER_NODE, f"{per_node:.0f} bytes per node kept"
    assert store["node-00042"].node.pod_cidrs == ("10.0.42.0/24", "fd00:2a::/64")

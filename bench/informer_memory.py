"""Memory of the node informer's store: N realistic Nodes listed from the Kubernetes stand-in.

Prints one JSON object: the nodes, the bytes the store holds (tracemalloc, after the list's
transient objects are freed), bytes per node, and the size of one Node as the API sends it.
Usage: .venv/bin/python bench/informer_memory.py [NODES]   (default 10000)
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tracemalloc

import httpx2

from kaput_not.kube.api import KubeApi
from kaput_not.kube.informer import NodeInformer
from kaput_not_standins.kube import KubeApiServer


async def measure(count: int) -> dict[str, object]:
    with KubeApiServer().run_in_thread() as kube:
        for i in range(count):
            cidrs = (f"10.{64 + i // 256}.{i % 256}.0/24", f"fd00:10:244:{i:x}::/64")
            kube.state.create_node(f"node-{i:05d}", pod_cidrs=cidrs)
        wire_bytes = len(kube.state.nodes()[0].manifest())
        async with httpx2.AsyncClient(base_url=kube.base_url, timeout=60) as client:
            informer = NodeInformer(KubeApi(client), lambda event: None)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            task = asyncio.create_task(informer.run())
            await informer.synced.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
        held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return {
        "nodes": count,
        "store_bytes": held,
        "store_mib": round(held / 2**20, 2),
        "bytes_per_node": round(held / count),
        "node_json_bytes": wire_bytes,
        "in_store": len(informer),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))))

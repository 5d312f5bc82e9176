"""The Kubernetes client times its requests on the clock it is given (issue 21 item 2: one
clock injected everywhere), so the request-duration metric follows a test's fake clock too."""

from __future__ import annotations

import httpx2
import msgspec

from kaput_not.decoding import Decoder
from kaput_not.kube.api import KubeApi
from tests.clock import FakeClock


class _Object(msgspec.Struct):
    kind: str


async def test_request_durations_are_measured_on_the_injected_clock() -> None:
    clock = FakeClock(100.0)

    def answer(request: httpx2.Request) -> httpx2.Response:
        clock.advance(2.5)  # the server takes 2.5 s on the injected clock
        return httpx2.Response(200, json={"kind": "Lease"})

    seen: list[tuple[str, str, int | None, float]] = []
    api = KubeApi(
        httpx2.AsyncClient(base_url="https://kube.test", transport=httpx2.MockTransport(answer)),
        on_request=lambda *args: seen.append(args),
        clock=clock,
    )
    try:
        got = await api.get("/apis/coordination.k8s.io/v1/leases", Decoder(_Object))
    finally:
        await api.aclose()
    assert got.kind == "Lease"
    assert seen == [("GET", "kube.test", 200, 2.5)]

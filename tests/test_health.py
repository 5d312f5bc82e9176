"""The health and metrics server, spoken to over a real socket."""

from __future__ import annotations

import asyncio

import httpx2
from prometheus_client import CollectorRegistry, Counter

from kaput_not.health import HealthServer


async def start(ready: tuple[bool, str] = (True, "leader")) -> HealthServer:
    registry = CollectorRegistry()
    Counter("kaput_not_probe_total", "a test counter", registry=registry).inc(3)
    server = HealthServer(
        host="127.0.0.1",
        port=0,
        registry=registry,
        alive=lambda: (True, "running"),
        ready=lambda: ready,
    )
    await server.start()
    return server


async def test_probes_and_metrics():
    server = await start()
    base = f"http://127.0.0.1:{server.port}"
    async with httpx2.AsyncClient() as client:
        health = await client.get(base + "/healthz")
        ready = await client.get(base + "/readyz")
        metrics = await client.get(base + "/metrics")
        missing = await client.get(base + "/nope")
        wrong = await client.post(base + "/healthz")
    await server.stop()
    assert (health.status_code, health.text) == (200, "ok: running\n")
    assert (ready.status_code, ready.text) == (200, "ok: leader\n")
    assert "kaput_not_probe_total 3.0" in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    assert missing.status_code == 404
    assert wrong.status_code == 405


async def test_not_ready_is_503_with_the_reason():
    server = await start(ready=(False, "waiting for the first complete list of Kubernetes nodes"))
    async with httpx2.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{server.port}/readyz")
    await server.stop()
    assert answer.status_code == 503
    assert "first complete list" in answer.text


async def test_a_client_that_never_finishes_its_request_does_not_block_others():
    server = await start()
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # and never the end of the head
    async with httpx2.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{server.port}/healthz")
    assert answer.status_code == 200
    writer.close()
    await server.stop()


async def test_metrics_speak_openmetrics_to_a_scraper_that_asks_for_it():
    """Issue 20: Prometheus asks for OpenMetrics (Accept: application/openmetrics-text); it got
    the classic text format regardless."""
    server = await start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    async with httpx2.AsyncClient() as client:
        open_metrics = await client.get(url, headers={"Accept": accept})
        classic = await client.get(url)
    await server.stop()
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert "kaput_not_probe_total 3.0" in open_metrics.text
    assert open_metrics.text.endswith("# EOF\n")
    assert classic.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "# EOF" not in classic.text

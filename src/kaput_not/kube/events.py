"""Kubernetes Events about Nodes (events.k8s.io/v1), so `kubectl describe node` says why a
node has no rule, or that its rules were written.

Nodes are cluster-scoped, and the API server stores an Event about a cluster-scoped object only
in `default` (or `kube-system`): anywhere else it answers 422. So, like client-go's recorder,
Events about Nodes go to `default`, whatever namespace the controller runs in; the chart grants
creating Events there and only there.

Events are a courtesy, never a reason to fail: each is posted in the background, a storm is cut
by a token bucket (the rest are dropped and counted, and never delay later ones), and a refusal
that every Event would get (403 from RBAC, 404 without the Events API, or any other 4xx but the
passing ones: 408, 409, 429) turns them off with one warning instead of one per event. The
caller emits only on state changes, which is the aggregation: a node that stays skipped gets one
Warning, not one per pass.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable

import msgspec

from kaput_not import ratelimit
from kaput_not.core.model import KubeNode
from kaput_not.kube.api import KubeApi, KubeError
from kaput_not.kube.lease import micro_time
from kaput_not.kube.wire import status_decoder

log = logging.getLogger("kaput_not.events")

CONTROLLER = "kaput-not.io/kaput-not"
#: Where Events about cluster-scoped objects (Nodes) are accepted; client-go uses it too.
NAMESPACE = "default"
#: Longer notes are refused by the API server (events.k8s.io/v1 caps `note` at 1 kB).
NOTE_LIMIT = 1024
#: Answers that will be the same for every Event: turn Events off, with this warning.
_TURNED_OFF_BY = {
    403: "no permission to create Events in %s (%s); Events are off. The chart grants it with "
    "events.enabled=true",
    404: "the API server has no events.k8s.io/v1 Events in namespace %s (%s); Events are off "
    "(EVENTS_ENABLED=false turns them off without this warning)",
}
_UNEXPECTED = (
    "the API server refused an Event in namespace %s (%s); Events are off until the next start, "
    "as every Event would be refused the same way (EVENTS_ENABLED=false turns them off without "
    "this warning)"
)
#: 4xx answers that can pass: a timeout, a name clash, throttling. They cost one Event only.
_PASSING = {408, 409, 429}


class EventMeta(msgspec.Struct):
    # generateName, not a name: Events are many, and their names do not matter.
    generateName: str  # noqa: N815 - Kubernetes field names
    namespace: str


class ObjectReference(msgspec.Struct, omit_defaults=True):
    apiVersion: str  # noqa: N815 - Kubernetes field names
    kind: str
    name: str
    uid: str = ""


class Event(msgspec.Struct, omit_defaults=True):
    metadata: EventMeta
    eventTime: str  # noqa: N815
    reportingController: str  # noqa: N815
    reportingInstance: str  # noqa: N815
    action: str
    reason: str
    regarding: ObjectReference
    note: str
    type: str
    apiVersion: str = "events.k8s.io/v1"  # noqa: N815
    kind: str = "Event"


class EventRecorder:
    """Posts Events about Nodes into `namespace` (`default`, where the API server takes them)."""

    def __init__(
        self,
        api: KubeApi,
        *,
        instance: str,
        namespace: str = NAMESPACE,
        rate: float = 5.0,
        burst: int = 50,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        clock: ratelimit.Clock = time.monotonic,
        on_dropped: Callable[[], None] = lambda: None,
    ) -> None:
        self._api = api
        self._namespace = namespace
        self._instance = instance[:128]
        self._bucket = ratelimit.TokenBucket(rate=rate, burst=burst, clock=clock)
        self._now = now
        self._on_dropped = on_dropped
        self._enabled = True
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, node: KubeNode, *, warning: bool, reason: str, note: str) -> None:
        """Post one Event about `node` in the background (dropped beyond the rate)."""
        if not self._enabled:
            return
        if not self._bucket.take():
            self._on_dropped()
            return
        event = Event(
            # The server validates the prefix as a name once a trailing dash is masked.
            metadata=EventMeta(generateName=f"{node.name}-", namespace=self._namespace),
            eventTime=micro_time(self._now()),
            reportingController=CONTROLLER,
            reportingInstance=self._instance,
            action="Reconcile",
            reason=reason,
            regarding=ObjectReference(apiVersion="v1", kind="Node", name=node.name, uid=node.uid),
            note=note[:NOTE_LIMIT],
            type="Warning" if warning else "Normal",
        )
        task = asyncio.get_running_loop().create_task(self._post(event, node.name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, event: Event, node: str) -> None:
        body = msgspec.json.encode(event)
        path = f"/apis/events.k8s.io/v1/namespaces/{self._namespace}/events"
        try:
            await self._api.send("POST", path, body, status_decoder)
            log.debug("posted a %s Event %s about node %s", event.type, event.reason, node)
        except KubeError as exc:
            if 400 <= exc.status < 500 and exc.status not in _PASSING:
                if self._enabled:  # Events already in flight get the same answer: say it once
                    self._enabled = False
                    message = _TURNED_OFF_BY.get(exc.status, _UNEXPECTED)
                    log.warning(message, self._namespace, exc)
            elif 400 <= exc.status < 500:
                log.warning("the API server refused an Event about node %s: %s", node, exc)
            else:
                log.debug("could not post an Event about node %s: %s", node, exc)

    async def aclose(self) -> None:
        """Let Events in flight finish (briefly) before the API client closes."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)

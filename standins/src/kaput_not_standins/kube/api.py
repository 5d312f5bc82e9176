"""The emulated Kubernetes API as one function: request in, reply out.

Order of checks, as in the real server: authentication (401), then the route (404 for an unknown
path, 405 for a method the resource does not serve here), then query parameters (400), then
the handler, under the state lock so it sees and leaves the cluster consistent. A
:class:`.status.StatusError` raised anywhere becomes the Status reply. Sockets, faults and the
request log live in the layers above.

Authentication: with ``token`` None any request is accepted, with or without credentials;
otherwise ``Authorization: Bearer <token>`` must match, or the answer is 401 ``Unauthorized``.
Not modelled: RBAC (403), field selectors, other credential kinds, impersonation, ``Warning``
headers, dry-run, field managers, PATCH, DELETE, and every resource but nodes (read-only; seed them
through :class:`.state.KubeState`) and leases.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..http.messages import Reply, Request, Response
from . import leases, paging, routes, selectors, status, watch
from .state import KubeState

JSON = "application/json"
_HEADERS = (("Cache-Control", "no-cache, private"),)
_INTEGER = re.compile(r"[+-]?[0-9]+")

Handler = Callable[[Request, Mapping[str, str]], Reply]


class KubeApi:
    def __init__(
        self,
        state: KubeState,
        hub: watch.WatchHub,
        *,
        token: str | None,
        bookmark_interval: float,
        default_watch_timeout: float,
        expired_answer: watch.ExpiredAnswer,
    ) -> None:
        self._state = state
        self._hub = hub
        self._token = token
        self._bookmark_interval = bookmark_interval
        self._default_watch_timeout = default_watch_timeout
        self._expired_answer = expired_answer
        self._handlers: dict[str, Handler] = {
            routes.LIST_NODES: self._list_nodes,
            routes.GET_NODE: self._get_node,
            routes.LIST_ALL_LEASES: lambda _, p: _json(200, leases.listing(state, None)),
            routes.LIST_LEASES: lambda _, p: _json(200, leases.listing(state, p["namespace"])),
            routes.GET_LEASE: self._get_lease,
            routes.CREATE_LEASE: self._create_lease,
            routes.UPDATE_LEASE: self._update_lease,
        }

    def respond(
        self,
        request: Request,
        resolved: routes.Resolved,
        *,
        expire: watch.ExpiredAnswer | None = None,
    ) -> Reply:
        """The answer to ``request``; ``expire`` forces a watch start to answer 410 that way."""
        try:
            self._authenticate(request)
            if resolved.key == routes.WATCH_NODES:
                return self._watch(request, expire)
            handler = self._handlers.get(resolved.key)
            if handler is None:
                if resolved.template is None:
                    raise status.route_not_found()
                raise status.method_not_allowed()
            with self._state.lock:
                return handler(request, resolved.params)
        except status.StatusError as exc:
            return exc.response()

    def _authenticate(self, request: Request) -> None:
        if self._token is None:
            return
        given = request.header("authorization") or ""
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode(), self._token.encode()
        ):
            raise status.unauthorized()

    # -- nodes --------------------------------------------------------------------------------

    def _list_nodes(self, request: Request, params: Mapping[str, str]) -> Reply:
        selector = _selector(request)
        if routes.parse_bool(request.query_value("watch")) is None:
            raise status.bad_request(f"invalid watch parameter: {request.query_value('watch')!r}")
        body = paging.list_nodes(
            self._state,
            limit=_int(request, "limit") or 0,
            token=request.query_value("continue"),
            resource_version=request.query_value("resourceVersion"),
            selector=selector,
        )
        return Response(200, body, JSON, _HEADERS)

    def _watch(self, request: Request, expire: watch.ExpiredAnswer | None) -> Reply:
        selector = _selector(request)
        timeout = _int(request, "timeoutSeconds") or self._default_watch_timeout
        bookmarks = routes.parse_bool(request.query_value("allowWatchBookmarks"))
        if bookmarks is None:
            raise status.bad_request("invalid allowWatchBookmarks parameter")
        with self._state.lock:
            return watch.start(
                self._state,
                self._hub,
                resource_version=request.query_value("resourceVersion"),
                bookmarks=bookmarks,
                bookmark_interval=self._bookmark_interval,
                timeout=float(timeout),
                expired_answer=expire or self._expired_answer,
                force_expired=expire is not None,
                selector=selector,
            )

    def _get_node(self, _: Request, params: Mapping[str, str]) -> Reply:
        record = self._state.node(params["name"])
        if record is None:
            raise status.not_found("nodes", params["name"])
        return Response(200, record.manifest() + b"\n", JSON, _HEADERS)

    # -- leases -------------------------------------------------------------------------------

    def _get_lease(self, _: Request, params: Mapping[str, str]) -> Reply:
        return _json(200, leases.get(self._state, params["namespace"], params["name"]))

    def _create_lease(self, request: Request, params: Mapping[str, str]) -> Reply:
        _require_json(request)
        return _json(201, leases.create(self._state, params["namespace"], request.body))

    def _update_lease(self, request: Request, params: Mapping[str, str]) -> Reply:
        _require_json(request)
        stored, created = leases.replace(
            self._state, params["namespace"], params["name"], request.body
        )
        return _json(201 if created else 200, stored)


def _json(code: int, value: dict[str, Any]) -> Response:
    return Response(code, status.encode(value), JSON, _HEADERS)


def _int(request: Request, name: str) -> int | None:
    """An integer query parameter (Go's ParseInt), None when absent; 400 when malformed."""
    raw = request.query_value(name)
    if not raw:
        return None
    if not _INTEGER.fullmatch(raw):
        raise status.bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax ({name})')
    return int(raw)


def _selector(request: Request) -> selectors.Selector | None:
    """The request's labelSelector (None: every node); fieldSelector is not modelled."""
    if request.query_value("fieldSelector"):
        raise status.bad_request("fieldSelector is not modelled by the Kubernetes API stand-in")
    text = request.query_value("labelSelector")
    return selectors.parse(text) if text.strip() else None


def _require_json(request: Request) -> None:
    """A body must be JSON; a missing Content-Type is taken as JSON, as the server does."""
    content_type = request.header("content-type") or ""
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != JSON:
        raise status.unsupported_media_type()  # YAML and protobuf are not modelled

"""Path-template routing with gorilla/mux's rules, and the route keys used by logs and faults.

A route is ``METHOD /template`` where ``{name}`` matches one non-empty path segment (mux's
default ``[^/]+``). Matching is on the decoded path, as mux does without ``UseEncodedPath``, so
an id containing ``/`` does not match. Routes are tried in registration order; a path matched
only with other methods is a 405, no match at all a 404.

The route key of a request is the template it matched (``DELETE /api/v1/egress``,
``POST /api/v1/host/register/{token}``); an unmatched request keys on its own path.
Not modelled: mux path cleaning (301 on ``//``), strict-slash redirects, regexp variables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..http import paths
from ..http.messages import Request, Response, StreamingResponse
from . import envelope

Handler = Callable[[Request], Response | StreamingResponse]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        """The path variables if ``segments`` fit the template, else None."""
        return paths.bind(self.template, segments)


@dataclass(frozen=True)
class Resolved:
    """Where a request goes: its route key, and a bound handler or gorilla's default answer."""

    key: str
    request: Request
    handler: Handler | None = None
    fallback: Response | None = None

    def respond(self) -> Response | StreamingResponse:
        if self.handler is None:
            assert self.fallback is not None
            return self.fallback
        return self.handler(self.request)


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        self._routes.append(Route(method, template, handler))

    @property
    def keys(self) -> list[str]:
        return [route.key for route in self._routes]

    def resolve(self, request: Request) -> Resolved:
        # Only the leading slash goes: "/api/hosts/" has an empty last segment, so it is a 404.
        segments = paths.segments(request.path)
        path_matched_by: Route | None = None
        for route in self._routes:
            params = route.bind(segments)
            if params is None:
                continue
            if route.method == request.method:
                bound = dataclasses.replace(request, params=params)
                return Resolved(route.key, bound, handler=route.handler)
            path_matched_by = path_matched_by or route
        if path_matched_by is not None:
            key = f"{request.method} {path_matched_by.template}"
            return Resolved(key, request, fallback=envelope.method_not_allowed())
        return Resolved(f"{request.method} {request.path}", request, fallback=envelope.not_found())

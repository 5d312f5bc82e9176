"""Path templates as both stand-ins route them: ``/api/v1/nodes/{name}``.

A ``{variable}`` segment matches one non-empty segment of the decoded path (gorilla/mux's
default ``[^/]+``, and what the Kubernetes API server's routes accept); every other segment must
be equal. The stand-ins decide the rest themselves: which templates, in what order, and what a
request that fits none of them gets.
"""

from __future__ import annotations


def segments(path: str) -> list[str]:
    """The segments of a decoded path; only the leading slash goes.

    ``"/api/hosts/"`` has an empty last segment, so it fits no template of its own length.
    """
    return path[1:].split("/") if path.startswith("/") else []


def bind(template: str, path_segments: list[str]) -> dict[str, str] | None:
    """The path variables if ``path_segments`` fit ``template``, else None."""
    pattern = template[1:].split("/")
    if len(pattern) != len(path_segments):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(pattern, path_segments, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    return params

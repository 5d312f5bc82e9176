"""When a list from an API is too sudden a change to act on without reading it again.

Both APIs we read can answer wrong without an error: a Kubernetes relist that comes back empty
from a broken apiserver or proxy, a Netmaker list that lost half its items to a bad database
read. Deletes planned from such a list would break the mesh, so an empty or sharply shrunk list
is read a second time before anything believes it (DESIGN.md rule 8).
"""

from __future__ import annotations

#: A list may lose this many items (and up to half) without a confirming second read.
SHRINK_FLOOR = 5


def suspect_shrink(before: int, after: int) -> bool:
    """Whether a list of `after` items, replacing one of `before`, is too sudden to trust."""
    if after >= before:
        return False
    return after == 0 or (before - after > SHRINK_FLOOR and after < before / 2)

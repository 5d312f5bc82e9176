"""When a list from an API is too sudden a change to act on without reading it again.

Both APIs we read can answer wrong without an error: a Kubernetes relist that comes back empty
from a broken apiserver or proxy, a Netmaker list that lost half its items to a bad database
read. Deletes planned from such a list would break the mesh, so an empty or sharply shrunk list
is read a second time before anything believes it (docs/design.md rule 8).
"""

from __future__ import annotations

#: A list may lose this many items (and up to half) without a confirming second read.
SHRINK_FLOOR = 5


def suspect_shrink(before: int, after: int) -> bool:
    """Whether a list of `after` items, replacing one of `before`, is too sudden to trust."""
    if after >= before:
        return False
    return after == 0 or (before - after > SHRINK_FLOOR and after < before / 2)


def suspect_first(remembered: int, seen: int) -> bool:
    """Whether the first list a new process reads, of `seen` items where the cluster last had
    `remembered`, is to be read again before it is trusted.

    Stricter than `suspect_shrink`: any shrink. A new process has no earlier list of its own,
    and one partial answer at start (7 nodes of 12: 5 fewer, not more than half) would
    otherwise pass as real and delete the missing nodes' rules; the price is one more list,
    once per start, when items really went while it was down.
    """
    return seen < remembered

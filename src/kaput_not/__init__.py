"""kaput-not: keeps Netmaker egress rules equal to every Kubernetes node's pod CIDRs.

The version comes from the git tag (v0.4.0 -> 0.4.0) through setuptools-scm, which writes
`_version.py` at build time (wheel, image, editable install) with the commit it was built from.
A build without git (an image's build context holds no .git) takes both from
SETUPTOOLS_SCM_PRETEND_VERSION and SETUPTOOLS_SCM_PRETEND_METADATA; a source tree that was never
built has no version file and says so: 0.0.0+unknown.
"""

from __future__ import annotations

import importlib
import os

#: Version of a source tree that was never built (no `_version.py`).
UNKNOWN_VERSION = "0.0.0+unknown"


def _baked() -> tuple[str, str]:
    try:
        baked = importlib.import_module("kaput_not._version")
    except ImportError:
        return UNKNOWN_VERSION, ""
    commit = str(getattr(baked, "__commit_id__", None) or "")
    # setuptools-scm writes git's describe form, g<hex>: the commit is the hex.
    if commit.startswith("g") and all(c in "0123456789abcdef" for c in commit[1:]):
        commit = commit[1:]
    return str(baked.__version__), commit


__version__, _commit = _baked()
#: The git commit this was built from: baked at build time, else KAPUT_NOT_REVISION (for an
#: image built without one baked), else "unknown".
__revision__ = _commit or os.environ.get("KAPUT_NOT_REVISION", "") or "unknown"

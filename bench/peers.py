"""The real peers a benchmark runs: each binary from its variable, else from scripts/build-peers
(which reuses what ~/.cache/kaput-not/peers holds)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class PeerMissing(Exception):
    """A peer cannot be had; the message is one line."""


def find_peers(peers: Mapping[str, str]) -> dict[str, str]:
    """`peers` maps a peer's name (as build-peers knows it) to the variable that may name its
    binary; returns name -> path of an executable, or raises PeerMissing."""
    found = {name: os.environ.get(variable, "") for name, variable in peers.items()}
    reason = ""
    if not all(found.values()):
        built = subprocess.run(  # noqa: S603 - our own script, with our interpreter
            [sys.executable, str(ROOT / "scripts" / "build-peers"), *peers],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        for line in built.stdout.splitlines():
            name, _, path = line.partition(" ")
            if name in found and not found[name]:
                found[name] = path.strip()
        failures = [line for line in built.stderr.splitlines() if line.startswith("build-peers: ")]
        reason = failures[-1] if failures else f"scripts/build-peers exited {built.returncode}"
    for name, path in found.items():
        if not path:
            raise PeerMissing(f"no {name}: {peers[name]} is unset and {reason}")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise PeerMissing(f"no {name}: {path} is not an executable file")
    return found

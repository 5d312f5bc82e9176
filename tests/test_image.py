"""What goes into the container image: the build context `.dockerignore` lets through."""

from __future__ import annotations

import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_context() -> set[str]:
    """Files Docker sends as the build context, by .dockerignore's rules (last match wins, a
    `!` pattern lets a path back in, a directory pattern covers what is below it)."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    files = set()
    for path in ROOT.rglob("*"):
        if not path.is_file() or ".git" in path.parts or ".venv" in path.parts:
            continue
        relative = path.relative_to(ROOT).as_posix()
        included = True
        for keep, pattern in rules:
            pieces = relative.split("/")
            prefixes = ["/".join(pieces[: i + 1]) for i in range(len(pieces))]
            if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or fnmatch.fnmatchcase(
                relative, pattern
            ):
                included = keep
        if included:
            files.add(relative)
    return files


def test_the_image_build_context_has_the_program_and_no_stand_ins():
    context = build_context()
    assert "src/kaput_not/controller/app.py" in context
    assert "requirements/runtime.lock" in context
    assert not [f for f in context if f.startswith("src/kaput_not/testing/")]
    assert not [f for f in context if f.startswith(("tests/", "scripts/", "bench/", "charts/"))]

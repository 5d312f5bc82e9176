"""What goes into the container image (the build context `.dockerignore` lets through) and the
tags the release pipeline gives it (scripts/image-tags)."""

from __future__ import annotations

import fnmatch
import os
import subprocess
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
    assert "src/kaput_not/app/run.py" in context
    assert "requirements/runtime.lock" in context
    assert not [f for f in context if "standins" in f]
    assert not [f for f in context if f.startswith(("tests/", "scripts/", "bench/", "charts/"))]


def image_tags(ref: str) -> list[str]:
    env = {**os.environ, "GITHUB_REF": ref, "GITHUB_SHA": "0123456789abcdef" * 2 + "01234567"}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "image-tags")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return done.stdout.split()


def test_image_tags_are_the_go_workflows_branch_pr_semver_sha_and_latest():
    assert image_tags("refs/heads/main") == ["main", "sha-0123456"]
    assert image_tags("refs/heads/feature/x y") == ["feature-x-y", "sha-0123456"]
    assert image_tags("refs/pull/42/merge") == ["pr-42", "sha-0123456"]
    assert image_tags("refs/tags/v1.2.3") == ["1.2.3", "1.2", "latest", "sha-0123456"]
    # A pre-release moves neither latest nor the minor tag.
    assert image_tags("refs/tags/v1.3.0-rc.1") == ["1.3.0-rc.1", "sha-0123456"]

"""Versions users can follow: one tag gives the chart version, the appVersion and the image tag
(scripts/version, run on a git repository made here), the chart's version is a semver upgrade
from the Go chart's, and the repository ships its LICENSE and a CHANGELOG entry for the
version it is about to release."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
CHART_YAML = ROOT / "charts" / "kaput-not" / "Chart.yaml"
SCRIPT = ROOT / "scripts" / "version"
#: The Go chart's version (charts/kaput-not/Chart.yaml of the Go original at 97b4073).
GO_CHART_VERSION = "0.3.3-SNAPSHOT"
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="no git")


def precedence(version: str) -> tuple[object, ...]:
    """SemVer 2 precedence: a pre-release sorts below its release; identifiers compare
    numerically when numeric, else as text, numeric ones lower."""
    match = SEMVER.match(version)
    assert match, f"{version} is not SemVer 2"
    major, minor, patch, pre = match.groups()
    core = (int(major), int(minor), int(patch))
    if pre is None:
        return (*core, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, ids)


def chart() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(CHART_YAML.read_text())
    return loaded


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding scripts/version and the chart's Chart.yaml, one commit."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / "charts" / "kaput-not").mkdir(parents=True)
    shutil.copy2(SCRIPT, root / "scripts" / "version")
    shutil.copy2(CHART_YAML, root / "charts" / "kaput-not" / "Chart.yaml")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return root


def version(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VERSION_TAG", "GITHUB_REF_TYPE", "GITHUB_REF_NAME"}
    }
    return subprocess.run(
        ["bash", str(repo / "scripts" / "version"), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
        timeout=30,
    )


def values(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_one_tag_gives_chart_version_app_version_and_image_tag(repo: Path):
    release = str(chart()["version"])
    git(repo, "tag", f"v{release}")
    found = values(version(repo))
    assert found == {
        "VERSION": release,
        "CHART_VERSION": release,
        "APP_VERSION": release,
        "IMAGE_TAG": release,
        "PYTHON_VERSION": release,
        "REVISION": git(repo, "rev-parse", "HEAD"),
        "RELEASE": "true",
    }
    assert version(repo, "IMAGE_TAG").stdout == f"{release}\n"
    # In a GitHub workflow run for the tag, the ref names it (a clone may not fetch tags).
    git(repo, "tag", "-d", f"v{release}")
    ci = values(version(repo, GITHUB_REF_TYPE="tag", GITHUB_REF_NAME=f"v{release}"))
    assert (ci["CHART_VERSION"], ci["RELEASE"]) == (release, "true")


def test_a_release_candidate_tag_precedes_the_release_the_chart_names(repo: Path):
    release = str(chart()["version"])
    found = values(version(repo, VERSION_TAG=f"v{release}-rc.1"))
    assert found["CHART_VERSION"] == found["IMAGE_TAG"] == f"{release}-rc.1"
    assert precedence(found["CHART_VERSION"]) < precedence(release)


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("v9.9.9", "set version and appVersion there to 9.9.9"),
        ("v0.4", "is not a release tag"),
        ("release-1", "is not a release tag"),
    ],
)
def test_a_tag_the_chart_does_not_follow_is_refused_in_one_line(repo: Path, tag, message):
    done = version(repo, VERSION_TAG=tag)
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert message in line


def test_without_a_tag_a_dev_version_below_the_next_release(repo: Path, tmp_path: Path):
    release = str(chart()["version"])
    # A shallow clone, as CI makes them: no tag, one commit.
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
        check=True,
        capture_output=True,
    )
    found = values(version(clone))
    head = git(clone, "rev-parse", "HEAD")
    assert found["VERSION"] == f"{release}-dev.g{head[:12]}"
    assert found["CHART_VERSION"] == found["APP_VERSION"] == found["IMAGE_TAG"] == found["VERSION"]
    assert found["PYTHON_VERSION"] == f"{release}.dev0+g{head[:12]}"
    assert (found["REVISION"], found["RELEASE"]) == (head, "false")
    assert precedence(found["VERSION"]) < precedence(release)
    # Outside git (a source tarball): still a version, and the commit is unknown.
    shutil.rmtree(clone / ".git")
    bare = values(version(clone))
    assert (bare["VERSION"], bare["REVISION"]) == (f"{release}-dev.gunknown", "unknown")


def test_chart_version_is_a_semver_upgrade_from_the_go_chart():
    meta = chart()
    assert precedence(str(meta["version"])) > precedence(GO_CHART_VERSION)
    assert str(meta["appVersion"]) == str(meta["version"])
    assert str(meta["kubeVersion"]).startswith(">=1.21")
    assert str(meta["home"]).startswith("https://")
    assert meta["sources"] == [meta["home"]]


def test_changelog_has_an_entry_for_the_version_to_release():
    text = (ROOT / "CHANGELOG.md").read_text()
    release = str(chart()["version"])
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert headings[:2] == ["Unreleased", release]
    entry = text.split(f"## [{release}]", 1)[1].split("\n## ", 1)[0]
    assert "### Added" in entry
    assert re.search(rf"^\[{re.escape(release)}\]: https://", text, flags=re.MULTILINE)


def test_license_is_the_apache_2_text_pyproject_names():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in pyproject
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text.splitlines()[1]
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text) > 10_000  # the full text, not a pointer to it

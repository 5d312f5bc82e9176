"""The stand-ins are a distribution of their own (standins/): the product runs without them, and
`kaput-not demo`, the one product command that uses them, says how to get them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kaput_not import cli


def hide_the_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every `import kaput_not_standins...` fail, as in an installation without them."""
    names = [m for m in sys.modules if m.startswith("kaput_not_standins.")]
    for name in ["kaput_not_standins", *names]:
        monkeypatch.setitem(sys.modules, name, None)


def test_demo_without_the_stand_ins_says_to_install_the_demo_extra(monkeypatch, capsys):
    hide_the_stand_ins(monkeypatch)
    assert cli.main(["demo", "--nodes", "2"]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("kaput-not demo: the demo needs the built-in Netmaker emulator"), line
    assert "leaves out" in line
    assert "pip install '.[demo]' ./standins" in line


# A fresh interpreter with the stand-ins hidden imports every product module and lists them.
IMPORT_THE_PRODUCT = """
import importlib, pkgutil, sys
sys.modules["kaput_not_standins"] = None
import kaput_not
names = [m.name for m in pkgutil.walk_packages(kaput_not.__path__, "kaput_not.")]
for name in names:
    if not name.endswith(".__main__"):
        importlib.import_module(name)
print("\\n".join(names))
"""


def test_the_product_package_holds_no_stand_in_and_imports_without_them():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_PRODUCT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules = done.stdout.split()
    assert "kaput_not.app.demo" in modules
    assert "kaput_not.cli" in modules
    assert not [m for m in modules if ".testing" in m or "standin" in m]  # the old and new homes

"""``labelSelector`` on node lists and watches, as the API server applies it.

Parsed here on its own (stand-ins import nothing from the code under test). Requirements are
ANDed: ``key``, ``!key``, ``key=v`` / ``key==v``, ``key!=v`` (also true when the label is
absent), ``key in (a,b)``, ``key notin (a,b)`` (also true when absent). A selector that does
not parse is a 400 ``BadRequest``, as the real server answers. Watches turn a node that stops
matching into DELETED and one that starts matching into ADDED (``watch.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from . import status

Selector = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(\s*({_VALUE}(?:\s*,\s*{_VALUE})*)\s*\)\s*")
_EQUAL = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_EXISTS = re.compile(rf"\s*(!?)\s*({_KEY})\s*")


def parse(text: str) -> Selector:
    tests: list[Selector] = []
    for part in _split(text):
        if match := _SET.fullmatch(part):
            key, op, listed = match.groups()
            values = frozenset(v.strip() for v in listed.split(","))
            tests.append(_member(key, values, op == "in"))
        elif match := _EQUAL.fullmatch(part):
            key, op, value = match.groups()
            tests.append(_equal(key, value, op != "!="))
        elif match := _EXISTS.fullmatch(part):
            negated, key = match.groups()
            tests.append(_exists(key, not negated))
        else:
            raise status.bad_request(f"unable to parse requirement: {part.strip()!r}")
    return lambda labels: all(test(labels) for test in tests)


def _split(text: str) -> list[str]:
    """The requirements: commas split them, except inside a set's parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if text.strip():
        parts.append(current)
    return parts


def _member(key: str, values: frozenset[str], inside: bool) -> Selector:
    if inside:
        return lambda labels: key in labels and labels[key] in values
    return lambda labels: key not in labels or labels[key] not in values


def _equal(key: str, value: str, equal: bool) -> Selector:
    if equal:
        return lambda labels: labels.get(key) == value
    return lambda labels: labels.get(key) != value


def _exists(key: str, present: bool) -> Selector:
    return lambda labels: (key in labels) == present

"""Kubernetes label selectors (`NODE_SELECTOR`), checked before anything starts.

The API server applies the selector (it is sent as `labelSelector` on the node list and watch);
this only checks it, with the grammar of apimachinery's `labels.Parse`, so a typo is one line
at start-up rather than a 400 on every list, retried forever:

    !key   key   key=value   key==value   key!=value   key in (a,b)   key notin (a,b)

requirements joined by commas (ANDed). A key is `[prefix/]name`: the name at most 63
characters of alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric; the prefix a
DNS subdomain. A value is empty or like a name.
"""

from __future__ import annotations

import re

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_NAME_RE = re.compile(_NAME)
_VALUE_RE = re.compile(f"(?:{_NAME})?")
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_PREFIX_RE = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_SET = re.compile(r"\s*([^\s=!(),]+)\s+(in|notin)\s*\(([^()]*)\)\s*")
_EQUALITY = re.compile(r"\s*([^\s=!(),]+)\s*(==|=|!=)\s*([^\s,()]*)\s*")
_EXISTS = re.compile(r"\s*(!?)\s*([^\s=!(),]+)\s*")


class InvalidSelector(ValueError):
    """The text is not a label selector; the message says where and why."""


def check_selector(text: str) -> str:
    """`text` normalised (requirements trimmed, joined by commas); raises InvalidSelector."""
    requirements: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        for pattern in (_SET, _EQUALITY, _EXISTS):
            match = pattern.match(text, pos)
            if match is not None and _ends_requirement(text, match.end()):
                break
        else:
            raise InvalidSelector(f"cannot read a requirement at {text[pos:]!r}")
        requirements.append(_requirement(pattern, match))
        pos = match.end() + 1  # past the comma
        if match.end() < len(text) and pos >= len(text):
            raise InvalidSelector("a comma ends the selector: remove it or add a requirement")
    return ",".join(requirements)


def _ends_requirement(text: str, end: int) -> bool:
    return end == len(text) or text[end] == ","


def _requirement(pattern: re.Pattern[str], match: re.Match[str]) -> str:
    if pattern is _SET:
        key, operator, listed = match.groups()
        _check_key(key)
        values = [value.strip() for value in listed.split(",")]
        if values == [""]:
            raise InvalidSelector(f"{key} {operator} (): the set needs at least one value")
        for value in values:
            _check_value(key, value)
        return f"{key} {operator} ({','.join(values)})"
    if pattern is _EQUALITY:
        key, operator, value = match.groups()
        _check_key(key)
        _check_value(key, value)
        return f"{key}{operator}{value}"
    negated, key = match.groups()
    _check_key(key)
    return f"{negated}{key}"


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix)):
        raise InvalidSelector(
            f"key {key!r}: the prefix before '/' must be a DNS subdomain, e.g. "
            "node-role.kubernetes.io"
        )
    if not _NAME_RE.fullmatch(name):
        raise InvalidSelector(
            f"key {key!r}: a label name is 1 to 63 letters, digits, '-', '_' or '.', starting "
            "and ending with a letter or digit"
        )


def _check_value(key: str, value: str) -> None:
    if not _VALUE_RE.fullmatch(value):
        raise InvalidSelector(
            f"{key}: value {value!r} must be empty or 1 to 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )

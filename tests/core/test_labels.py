"""Issue 20: NODE_SELECTOR is checked at start-up with the API server's grammar."""

from __future__ import annotations

import pytest

from kaput_not.core.labels import InvalidSelector, check_selector


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("!node-role.kubernetes.io/control-plane", "!node-role.kubernetes.io/control-plane"),
        ("kubernetes.io/os=linux", "kubernetes.io/os=linux"),
        ("tier == edge", "tier==edge"),
        ("zone!=a", "zone!=a"),
        ("zone in (a, b)", "zone in (a,b)"),
        ("zone notin (a)", "zone notin (a)"),
        ("gpu", "gpu"),
        ("env=", "env="),
        (
            " ! node-role.kubernetes.io/control-plane , zone in (a,b),tier=edge ",
            "!node-role.kubernetes.io/control-plane,zone in (a,b),tier=edge",
        ),
        ("", ""),
    ],
)
def test_node_selector_accepts_the_label_selector_grammar(text, normalised):
    assert check_selector(text) == normalised


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("zone in a,b", "cannot read a requirement"),
        ("zone in ()", "the set needs at least one value"),
        ("a,", "a comma ends the selector"),
        ("-bad=x", "key '-bad'"),
        ("Bad_Prefix/x", "the prefix before '/' must be a DNS subdomain"),
        ("zone=a b", "cannot read a requirement"),
        ("zone=-a", "value '-a'"),
        ("a" * 64, "1 to 63"),
    ],
)
def test_node_selector_refuses_what_the_api_server_would_with_the_reason(text, why):
    with pytest.raises(InvalidSelector, match=why):
        check_selector(text)

"""Rule 9's host claims: which Kubernetes node owns each Netmaker host name (docs/design.md
section 4). A node owns the host of its own name; the host annotation is untrusted input."""

from __future__ import annotations

from collections.abc import Mapping

from kaput_not.core.model import HOST_ANNOTATION, KubeNode, SkipReason
from kaput_not.core.settings import PlanSettings


def _annotated(kube: KubeNode) -> bool:
    """Whether `kube` claims its host through the annotation (one naming another host)."""
    return kube.host_name is not None and kube.host_name != kube.name


def resolve_hosts(
    kube: Mapping[str, KubeNode], settings: PlanSettings
) -> tuple[
    dict[str, KubeNode], dict[str, tuple[SkipReason, str]], dict[str, tuple[str, ...]], set[str]
]:
    """Rule 9: which node owns each host name claimed, from every claimant of it.

    A node owns the host of its own name, and no annotation takes it: an annotation naming it
    is refused (`HOST_TAKEN`) and the owner is told (`claimed_by`). A host claimed only by
    annotation belongs to its one claimant; claimed so by several, to none of them
    (`HOST_CONTESTED`: its rules are kept). An annotation the settings refuse claims nothing.
    Returns the owners by host name, the skipped nodes, the owners' refused claimants and the
    contested host names.
    """
    owners: dict[str, KubeNode] = {}
    skips: dict[str, tuple[SkipReason, str]] = {}
    by_annotation: dict[str, list[KubeNode]] = {}
    for node in kube.values():
        if not _annotated(node):
            owners[node.name] = node
            continue
        refused = _annotation_refused(node, settings)
        if refused is not None:
            skips[node.name] = (SkipReason.HOST_ANNOTATION_REFUSED, refused)
        else:
            by_annotation.setdefault(node.netmaker_host, []).append(node)
    claimed_by: dict[str, tuple[str, ...]] = {}
    contested: set[str] = set()
    for host, claimants in by_annotation.items():
        names = tuple(sorted(k.name for k in claimants))
        owner = owners.get(host)
        if owner is not None:
            claimed_by[owner.name] = names
            for node in claimants:
                skips[node.name] = (
                    SkipReason.HOST_TAKEN,
                    f"its annotation {HOST_ANNOTATION}={host} names the Netmaker host of "
                    f"Kubernetes node {host}, which matches it by name and keeps it; remove "
                    "the annotation or correct it",
                )
        elif len(claimants) > 1:
            contested.add(host)
            for node in claimants:
                skips[node.name] = (
                    SkipReason.HOST_CONTESTED,
                    f"nodes {', '.join(names)} all name Netmaker host {host!r} in their "
                    f"{HOST_ANNOTATION} annotation; its rules are left as they are until "
                    "one claim remains",
                )
        else:
            owners[host] = claimants[0]
    return owners, skips, claimed_by, contested


def _annotation_refused(kube: KubeNode, settings: PlanSettings) -> str | None:
    """Why the settings refuse `kube`'s host annotation, or None when they allow it."""
    if not settings.host_annotation:
        return (
            f"its annotation {HOST_ANNOTATION}={kube.host_name} is ignored: the host "
            "annotation is turned off (HOST_ANNOTATION_ENABLED=false)"
        )
    pattern = settings.host_annotation_hosts
    if pattern is not None and pattern.fullmatch(kube.netmaker_host) is None:
        return (
            f"its annotation {HOST_ANNOTATION}={kube.host_name} names a host that "
            f"HOST_ANNOTATION_HOSTS ({pattern.pattern}) does not allow"
        )
    return None

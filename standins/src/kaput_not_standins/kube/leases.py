"""``coordination.k8s.io/v1`` Leases: get, list, create and replace, with the server's checks.

What a client meets, in the order the real server checks:

- the body must be a JSON object that decodes as a Lease: wrong types, or a MicroTime that is
  not RFC 3339 with exactly six fraction digits (``2024-05-01T10:00:00.000000Z``), are a 400
  ``BadRequest``, as Go's decoder rejects them; unknown fields are dropped;
- the body's namespace (if any) and, on PUT, its name must match the URL (400);
- POST of an existing name is 409 ``AlreadyExists``; POST with ``metadata.resourceVersion`` set
  is the server's bare 500 "resourceVersion should not be set on objects to be created";
- PUT of an existing Lease needs ``metadata.resourceVersion`` (422 ``Invalid`` without it) equal
  to the stored one (409 ``Conflict`` otherwise); ``metadata.uid`` may be omitted, not changed;
- PUT of a missing Lease creates it (201): Leases allow create-on-update;
- creating in a namespace that does not exist is 404 ``namespaces "x" not found``;
- validation: a DNS-1123 subdomain name, ``spec.leaseDurationSeconds`` > 0 and
  ``spec.leaseTransitions`` >= 0 when present (422 ``Invalid``).

Times are stored as given (the real server re-renders a non-UTC offset in UTC). The alpha
fields ``strategy`` and ``preferredHolder`` are dropped, as with their feature gate off.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from . import status
from .state import LEASE_API_VERSION, KubeState

GROUP = "coordination.k8s.io"
RESOURCE = "leases"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MICRO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})")
_MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_INT32_MAX = 2**31 - 1
_STRING_FIELDS = ("holderIdentity",)
_INT_FIELDS = ("leaseDurationSeconds", "leaseTransitions")
_TIME_FIELDS = ("acquireTime", "renewTime")
_SPEC_ORDER = (
    "holderIdentity",
    "leaseDurationSeconds",
    "acquireTime",
    "renewTime",
    "leaseTransitions",
)


def get(state: KubeState, namespace: str, name: str) -> dict[str, Any]:
    lease = state.lease(namespace, name)
    if lease is None:
        raise status.not_found(RESOURCE, name, group=GROUP)
    return lease


def listing(state: KubeState, namespace: str | None) -> dict[str, Any]:
    """A LeaseList (not paged); items lack kind and apiVersion, as in every real list."""
    items = []
    for lease in state.leases(namespace):
        del lease["kind"], lease["apiVersion"]
        items.append(lease)
    return {
        "kind": "LeaseList",
        "apiVersion": LEASE_API_VERSION,
        "metadata": {"resourceVersion": state.resource_version},
        "items": items,
    }


def create(state: KubeState, namespace: str, body: bytes) -> dict[str, Any]:
    """POST: the stored Lease; the caller holds the state lock."""
    lease = _decode(body)
    meta = lease["metadata"]
    _check_namespace(meta, namespace)
    _require_namespace(state, namespace)  # admission, before validation and storage
    name = meta.get("name", "")
    if not name:
        cause = ("Required value", "metadata.name", "name or generateName is required")
        raise status.invalid("Lease", "", [cause], group=GROUP)
    _validate(name, lease["spec"])
    if _version(meta.get("resourceVersion", "")) > 0:
        message = "resourceVersion should not be set on objects to be created"
        raise status.StatusError(500, "", message)
    if state.lease(namespace, name) is not None:
        raise status.already_exists(RESOURCE, name, group=GROUP)
    return state.save_lease(namespace, name, spec=lease["spec"], meta=meta)


def replace(
    state: KubeState, namespace: str, name: str, body: bytes
) -> tuple[dict[str, Any], bool]:
    """PUT: (the stored Lease, whether it was created); the caller holds the state lock."""
    lease = _decode(body)
    meta = lease["metadata"]
    _check_namespace(meta, namespace)
    if meta.get("name", "") != name:
        given = meta.get("name", "")
        raise status.bad_request(
            f"the name of the object ({given}) does not match the name on the URL ({name})"
        )
    old = state.lease(namespace, name)
    if old is None:
        _require_namespace(state, namespace)
        _validate(name, lease["spec"])
        return state.save_lease(namespace, name, spec=lease["spec"], meta=meta), True
    given = meta.get("resourceVersion", "")
    if _version(given) == 0:
        cause = (
            "Invalid value: 0x0",
            "metadata.resourceVersion",
            "must be specified for an update",
        )
        raise status.invalid("Lease", name, [cause], group=GROUP)
    if given != old["metadata"]["resourceVersion"]:
        raise status.conflict(RESOURCE, name, group=GROUP)
    uid = meta.get("uid", "")
    if uid and uid != old["metadata"]["uid"]:
        cause = (f'Invalid value: "{uid}"', "metadata.uid", "field is immutable")
        raise status.invalid("Lease", name, [cause], group=GROUP)
    _validate(name, lease["spec"])
    return state.save_lease(namespace, name, spec=lease["spec"], meta=meta), False


def _decode(body: bytes) -> dict[str, Any]:
    """The body as {"metadata": {...}, "spec": {...}} with only fields the server keeps."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _undecodable(str(exc)) from None
    if not isinstance(value, dict):
        raise _undecodable("json: cannot unmarshal into Go value of type coordination.Lease")
    kind = value.get("kind", "Lease")
    if kind != "Lease":
        raise _undecodable(
            f"the kind in the data ({kind}) does not match the expected kind (Lease)"
        )
    api_version = value.get("apiVersion", LEASE_API_VERSION)
    if api_version != LEASE_API_VERSION:
        raise status.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version"
            f" ({LEASE_API_VERSION})"
        )
    return {"metadata": _metadata(value.get("metadata")), "spec": _spec(value.get("spec"))}


def _metadata(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _type_error("metadata", "v1.ObjectMeta", raw)
    meta: dict[str, Any] = {}
    for key in ("name", "namespace", "uid", "resourceVersion"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise _type_error(f"metadata.{key}", "string", value)
            meta[key] = value
    for key in ("labels", "annotations"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise _type_error(f"metadata.{key}", "map[string]string", value)
            meta[key] = dict(value)
    return meta


def _spec(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _type_error("spec", "v1.LeaseSpec", raw)
    spec: dict[str, Any] = {}
    for key in _SPEC_ORDER:
        value = raw.get(key)
        if value is None:
            continue
        if key in _STRING_FIELDS and not isinstance(value, str):
            raise _type_error(f"spec.{key}", "string", value)
        if key in _INT_FIELDS and (
            isinstance(value, bool) or not isinstance(value, int) or abs(value) > _INT32_MAX
        ):
            raise _type_error(f"spec.{key}", "int32", value)
        if key in _TIME_FIELDS:
            _check_micro_time(value)
        spec[key] = value
    return spec


def _check_micro_time(value: object) -> None:
    if not isinstance(value, str):
        raise _type_error("spec", "v1.MicroTime", value)
    if not _MICRO_TIME.fullmatch(value) or not _parses(value):
        reason = f'cannot parse "{value}" as "{_MICRO_LAYOUT}"'
        raise _undecodable(f'parsing time "{value}" as "{_MICRO_LAYOUT}": {reason}')


def _parses(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _validate(name: str, spec: Mapping[str, Any]) -> None:
    causes = []
    if len(name) > 253 or not _NAME.fullmatch(name):
        detail = (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
            " '-' or '.', and must start and end with an alphanumeric character"
        )
        causes.append((f'Invalid value: "{name}"', "metadata.name", detail))
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(
            (f"Invalid value: {duration}", "spec.leaseDurationSeconds", "must be greater than 0")
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.append(
            (
                f"Invalid value: {transitions}",
                "spec.leaseTransitions",
                "must be greater than or equal to 0",
            )
        )
    if causes:
        raise status.invalid("Lease", name, causes, group=GROUP)


def _check_namespace(meta: Mapping[str, Any], namespace: str) -> None:
    if meta.get("namespace", namespace) != namespace:
        raise status.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


def _require_namespace(state: KubeState, namespace: str) -> None:
    if not state.has_namespace(namespace):
        raise status.not_found("namespaces", namespace)


def _version(value: str) -> int:
    """A resourceVersion as the server parses it; 0 when empty or not a positive integer."""
    return int(value) if value.isdigit() else 0


def _undecodable(reason: str) -> status.StatusError:
    return status.bad_request(f'Lease in version "v1" cannot be handled as a Lease: {reason}')


def _type_error(path: str, go_type: str, value: object) -> status.StatusError:
    got = {
        str: "string",
        bool: "bool",
        int: "number",
        float: "number",
        list: "array",
        dict: "object",
    }
    return _undecodable(
        f"json: cannot unmarshal {got.get(type(value), 'value')} into Go struct field"
        f" Lease.{path} of type {go_type}"
    )

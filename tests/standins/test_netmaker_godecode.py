"""Request bodies are decoded with Go's encoding/json rules, error texts included."""

from __future__ import annotations

import pytest

from kaput_not_standins.netmaker.godecode import DecodeError, Kind, Struct, decode_struct

EGRESS = Struct(
    "models.EgressReq",
    {"network": Kind.STRING, "nodes": Kind.METRICS, "nat": Kind.BOOL, "tags": Kind.STRINGS},
)
HOST = Struct(
    "models.Host",
    {"id": Kind.UUID, "macaddress": Kind.BYTES, "publickey": Kind.KEY32, "mtu": Kind.INT},
)


def test_unknown_keys_are_ignored_and_keys_match_case_insensitively():
    decoded = decode_struct(b'{"Network":"mesh","NODES":{"a":5},"colour":"red"}', EGRESS)
    assert decoded.text("network") == "mesh"
    assert decoded.metrics("nodes") == {"a": 5}


def test_missing_and_null_fields_keep_go_zero_values():
    decoded = decode_struct(b'{"network":null}', EGRESS)
    assert (decoded.text("network"), decoded.metrics("nodes"), decoded.flag("nat")) == (
        "",
        {},
        False,
    )
    assert decode_struct(b"null", EGRESS).strings("tags") == []


def test_only_the_first_json_value_is_read():
    assert decode_struct(b'  {"network":"a"} trailing garbage', EGRESS).text("network") == "a"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"   ", "EOF"),
        (b'{"network":', "unexpected EOF"),
        (b"nonsense", "invalid character 'n' looking for beginning of value"),
        (b"NaN", "invalid character 'N' looking for beginning of value"),
        (b"[1]", "json: cannot unmarshal array into Go value of type models.EgressReq"),
        (
            b'{"nodes":{"a":500.0}}',
            "json: cannot unmarshal number 500.0 into Go struct field EgressReq.nodes of type int",
        ),
        (
            b'{"nodes":{"a":5e2}}',
            "json: cannot unmarshal number 5e2 into Go struct field EgressReq.nodes of type int",
        ),
        (
            b'{"nodes":{"a":9223372036854775808}}',
            "json: cannot unmarshal number 9223372036854775808 into Go struct field "
            "EgressReq.nodes of type int",
        ),
        (
            b'{"nat":"false"}',
            "json: cannot unmarshal string into Go struct field EgressReq.nat of type bool",
        ),
        (
            b'{"network":1}',
            "json: cannot unmarshal number into Go struct field EgressReq.network of type string",
        ),
        (
            b'{"nodes":[]}',
            "json: cannot unmarshal array into Go struct field EgressReq.nodes of type "
            "map[string]int",
        ),
    ],
)
def test_go_rejections(body, message):
    with pytest.raises(DecodeError) as caught:
        decode_struct(body, EGRESS)
    assert str(caught.value) == message


def test_the_first_type_error_is_reported_after_decoding_everything():
    with pytest.raises(DecodeError, match=r"EgressReq\.network"):
        decode_struct(b'{"network":true,"nat":"x"}', EGRESS)


def test_byte_slices_are_base64_and_a_wireguard_key_is_an_array_of_numbers():
    decoded = decode_struct(b'{"macaddress":"AQIDBAUG","publickey":[1,2,3]}', HOST)
    assert decoded.octets("macaddress") == bytes([1, 2, 3, 4, 5, 6])
    assert decoded.octets("publickey") == bytes([1, 2, 3]) + bytes(29)  # Go zero-fills an array


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"publickey":"AAAA"}', "of type wgtypes.Key"),
        (b'{"publickey":[256]}', "number 256 into Go struct field Host.publickey of type uint8"),
        (b'{"macaddress":"not base64!"}', "illegal base64 data"),
        (b'{"id":"abc"}', "invalid UUID length: 3"),
        (b'{"id":"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"}', "invalid UUID format"),
    ],
)
def test_host_field_rejections(body, fragment):
    with pytest.raises(DecodeError, match=fragment):
        decode_struct(body, HOST)


def test_uuids_are_canonicalised():
    decoded = decode_struct(b'{"id":"{AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE}"}', HOST)
    assert decoded.text("id") == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

"""Schemathesis hooks for tests/openapi/run.

A budget's webhook is posted to by the host: every generated http(s) URL is replaced, right
before the request is sent (in every phase), by a closed port on loopback, so the host is never
told to talk to another machine. Other strings are left as generated: the host refuses them, as
the document says. (tests/openapi/run also runs the host in a network namespace of its own when
it can, with nothing but loopback.)
"""

import re

import schemathesis

LOOPBACK_WEBHOOK = "http://127.0.0.1:9/schemathesis-webhook"


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    body = case.body
    if isinstance(body, dict):
        url = body.get("webhook_url")
        if isinstance(url, str) and re.match(r"[\x00-\x20]*https?:", url, re.IGNORECASE):
            body["webhook_url"] = LOOPBACK_WEBHOOK


def _varint(data, i):
    shift = value = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def check_protobuf(data):
    """Raise ValueError unless `data` is a well-formed protobuf message (wire format only)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            length, i = _varint(data, i)
            i += length
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
        if i > len(data):
            raise ValueError("a field runs past the end")


@schemathesis.deserializer("application/x-protobuf")
def deserialize_protobuf(ctx, response):
    """The document describes protobuf bodies as binary strings: check the wire format, then
    hand schemathesis the bytes as a string."""
    check_protobuf(response.content)
    return response.content.decode("latin-1")

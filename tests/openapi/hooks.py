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

#!/usr/bin/env python3
"""The long-prompt figure of the write-path issue: one prompt that receives N small log batches
(one Claude Code `tool_result` each), sent one after another to a running host; prints the
median time of the first and last 50 requests (and their ratio) as one JSON line.

    tools/loadgen/long_prompt.py http://127.0.0.1:4318 [N=1500]

The records come from the JSON capture fixtures/claude-code/json-content-off (its prompt and one
tool result, renamed per run so that runs never meet)."""
import base64, http.client, json, statistics, sys, time, urllib.parse, uuid
from pathlib import Path

root = Path(__file__).resolve().parents[2]
endpoint = urllib.parse.urlparse(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
capture = root / "fixtures/claude-code/json-content-off"
body = next(json.loads(p.read_text()) for p in sorted(capture.glob("*-logs.json")))
records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]

def event(record):
    return next((a["value"].get("stringValue") for a in record["attributes"] if a["key"] == "event.name"), None)

def set_attr(record, key, value):
    for a in record["attributes"]:
        if a["key"] == key:
            a["value"] = value

prompt = next(r for r in records if event(r) == "user_prompt")
tool = next(r for r in records if event(r) == "tool_result")
run = uuid.uuid4().hex
for r in (prompt, tool):
    set_attr(r, "prompt.id", {"stringValue": f"prompt-{run}"})
    set_attr(r, "session.id", {"stringValue": f"session-{run}"})

def batch(record):
    out = json.loads(json.dumps(body))
    out["resourceLogs"] = out["resourceLogs"][:1]
    out["resourceLogs"][0]["scopeLogs"] = out["resourceLogs"][0]["scopeLogs"][:1]
    out["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = [record]
    return json.dumps(out).encode()

start = int(prompt["timeUnixNano"])
bodies = [batch(prompt)]
for i in range(count - 1):
    r = json.loads(json.dumps(tool))
    t = str(start + (i + 1) * 1_000_000)
    r["timeUnixNano"] = r["observedTimeUnixNano"] = t
    set_attr(r, "tool_use_id", {"stringValue": f"toolu_{run}_{i:06}"})
    bodies.append(batch(r))

auth = "Basic " + base64.b64encode(b"pk-local:sk-local").decode()
conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port)
times = []
for b in bodies:
    began = time.perf_counter()
    conn.request("POST", "/v1/logs", b, {"Content-Type": "application/json", "Authorization": auth})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"HTTP {response.status}")
    times.append((time.perf_counter() - began) * 1000)
first, last = statistics.median(times[:50]), statistics.median(times[-50:])
print(json.dumps({"batches": count, "first50_median_ms": round(first, 2), "last50_median_ms": round(last, 2),
                  "ratio": round(last / first, 2), "total_s": round(sum(times) / 1000, 1)}))

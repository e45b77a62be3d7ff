#!/usr/bin/env python3
"""The long-prompt figures of the write-path issue: one prompt that receives N small log batches
(one Claude Code `tool_result` each, or K with --per-batch), sent one after another to a running
host; prints the median time of the first and last 50 requests (and their ratio) as one JSON line.

    tools/loadgen/long_prompt.py http://127.0.0.1:4318 [N=1500] [--per-batch K] [--probe PK:SK]

--probe names another project's key pair: while the long prompt is written, a second client sends
that project small batches (a prompt and one tool result each) one after another, and the line adds
their p50/p99 (fairness: one project's huge trace must not stall another's writes).

The records come from the JSON capture fixtures/claude-code/json-content-off (its prompt and one
tool result, renamed per run so that runs never meet)."""
import argparse, base64, http.client, json, statistics, threading, time, urllib.parse, uuid
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("count", nargs="?", type=int, default=1500)
parser.add_argument("--per-batch", type=int, default=1)
parser.add_argument("--probe")
args = parser.parse_args()

root = Path(__file__).resolve().parents[2]
endpoint = urllib.parse.urlparse(args.url)
capture = root / "fixtures/claude-code/json-content-off"
body = next(json.loads(p.read_text()) for p in sorted(capture.glob("*-logs.json")))
records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]

def event(record):
    return next((a["value"].get("stringValue") for a in record["attributes"] if a["key"] == "event.name"), None)

def set_attr(record, key, value):
    for a in record["attributes"]:
        if a["key"] == key:
            a["value"] = value

PROMPT = next(r for r in records if event(r) == "user_prompt")
TOOL = next(r for r in records if event(r) == "tool_result")

def renamed(record, run, at, tool=None):
    r = json.loads(json.dumps(record))
    set_attr(r, "prompt.id", {"stringValue": f"prompt-{run}"})
    set_attr(r, "session.id", {"stringValue": f"session-{run}"})
    r["timeUnixNano"] = r["observedTimeUnixNano"] = str(at)
    if tool is not None:
        set_attr(r, "tool_use_id", {"stringValue": f"toolu_{run}_{tool:07}"})
    return r

def batch(rs):
    out = json.loads(json.dumps(body))
    out["resourceLogs"] = out["resourceLogs"][:1]
    out["resourceLogs"][0]["scopeLogs"] = out["resourceLogs"][0]["scopeLogs"][:1]
    out["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = rs
    return json.dumps(out).encode()

def post(conn, auth, b):
    began = time.perf_counter()
    conn.request("POST", "/v1/logs", b, {"Content-Type": "application/json", "Authorization": auth})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}")
    return (time.perf_counter() - began) * 1000

def basic(pair):
    return "Basic " + base64.b64encode(pair.encode()).decode()

run = uuid.uuid4().hex
start = int(PROMPT["timeUnixNano"])
bodies = [batch([renamed(PROMPT, run, start)])]
for i in range(args.count - 1):
    tools = range(i * args.per_batch, (i + 1) * args.per_batch)
    bodies.append(batch([renamed(TOOL, run, start + (t + 1) * 1_000_000, t) for t in tools]))

probe_times, done = [], threading.Event()
def probe():
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port)
    auth, n = basic(args.probe), 0
    while not done.is_set():
        other = f"{run}-probe-{n}"
        probe_times.append(post(conn, auth, batch([renamed(PROMPT, other, start), renamed(TOOL, other, start + 1, 0)])))
        n += 1
        time.sleep(0.02)

prober = threading.Thread(target=probe) if args.probe else None
if prober:
    prober.start()
conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port)
auth = basic("pk-local:sk-local")
times = [post(conn, auth, b) for b in bodies]
done.set()
if prober:
    prober.join()
first, last = statistics.median(times[:50]), statistics.median(times[-50:])
line = {"batches": args.count, "fragments": 1 + (args.count - 1) * args.per_batch,
        "first50_median_ms": round(first, 2), "last50_median_ms": round(last, 2),
        "ratio": round(last / first, 2), "total_s": round(sum(times) / 1000, 1)}
if probe_times:
    q = statistics.quantiles(probe_times, n=100)
    line |= {"probe_requests": len(probe_times), "probe_p50_ms": round(q[49], 2), "probe_p99_ms": round(q[98], 2)}
print(json.dumps(line))

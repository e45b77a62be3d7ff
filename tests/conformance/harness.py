"""Plumbing of the conformance suite: the host process, the recording proxy, the Antenna API
client, and the OTLP inventory (names and attribute keys) of a capture folder.
Python 3.11 standard library only."""

import base64
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PK = "pk-conformance"
SK = "sk-conformance-0123456789abcdef0123456789"
AUTH = "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()


class Host:
    """A real `antenna serve` on ephemeral ports with SQLite in a temporary directory."""

    def __init__(self, binary, cache_dir, log_path, fallback_user=None):
        self.dir = tempfile.mkdtemp(prefix="antenna-conf-host-")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "ANTENNA_PUBLIC_KEY": PK,
            "ANTENNA_SECRET_KEY": SK,
            "ANTENNA_LOG_FORMAT": "json",
            "RUST_LOG": "info",
        }
        args = [binary, "serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                "--database-url", f"sqlite://{self.dir}/antenna.db", "--cache-dir", cache_dir]
        if fallback_user:
            args += ["--fallback-user", fallback_user]
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.http = None
        self.grpc = None
        deadline = time.time() + 180  # a cold compiled-code cache compiles every parser
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"antenna serve exited with {self.proc.returncode}; see {log_path}")
            with open(log_path, "rb") as f:
                for line in f.read().decode(errors="replace").splitlines():
                    if "antenna listening" not in line:
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    fields = rec.get("fields", rec)
                    self.http = fields.get("addr")
                    grpc = str(fields.get("grpc") or "")
                    m = re.search(r"(\d+\.\d+\.\d+\.\d+:\d+)", grpc)
                    self.grpc = m.group(1) if m else None
            if self.http:
                break
            time.sleep(0.1)
        if not self.http:
            self.stop()
            raise RuntimeError(f"antenna serve did not start listening; see {log_path}")
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.http}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)

    def url(self):
        return f"http://{self.http}"

    def get(self, path):
        req = urllib.request.Request(self.url() + path, headers={"Authorization": AUTH})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def traces(self):
        out = []
        cursor = None
        while True:
            page = self.get("/api/public/traces?limit=500" + (f"&cursor={cursor}" if cursor else ""))
            out.extend(page.get("data") or [])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Recorder:
    """An OTLP/HTTP proxy in front of the host that keeps every request, in the fixtures layout:
    NNNN-<signal>.bin|.json (the body as received) and NNNN-<signal>.meta.json."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.folder = None
        self.seq = 0
        self.statuses = []
        recorder = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                body = b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.keep(self.path, dict(self.headers.items()), body,
                              self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding"))
                fwd_headers = {k: v for k, v in self.headers.items()
                               if k.lower() in ("authorization", "content-type", "content-encoding")}
                req = urllib.request.Request(recorder.upstream + self.path, data=body, headers=fwd_headers,
                                             method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
                except (urllib.error.URLError, OSError) as e:
                    status, data, ctype = 503, str(e).encode(), "text/plain"
                with recorder.lock:
                    recorder.statuses.append((self.path, status, data[:300] if status != 200 else b""))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record_into(self, folder):
        with self.lock:
            os.makedirs(folder, exist_ok=True)
            self.folder = folder
            self.seq = 0
            self.statuses = []

    def keep(self, path, headers, body, ctype, encoding):
        """Header names as sent (Rust exporters write them in lower case); ctype and encoding
        looked up case-insensitively."""
        signal_name = path.rstrip("/").split("/")[-1]
        ext = ".json" if "json" in ctype else ".bin"
        if encoding == "gzip":
            ext += ".gz"
        with self.lock:
            if not self.folder:
                return
            self.seq += 1
            name = f"{self.seq:04d}-{signal_name}"
            with open(os.path.join(self.folder, name + ext), "wb") as f:
                f.write(body)
            meta = {"seq": self.seq, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "method": "POST", "path": path, "signal": signal_name, "body_file": name + ext,
                    "body_len": len(body), "content_type": ctype, "content_encoding": encoding,
                    "headers": headers}
            with open(os.path.join(self.folder, name + ".meta.json"), "w") as f:
                json.dump(meta, f, indent=2)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- OTLP inventory: names and attribute keys (protobuf decoded by hand, JSON read) ----------

def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of one protobuf message; bytes for length-delimited."""
    i = 0
    n = len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, val


def _pb_kv_keys(buf, field):
    keys = []
    values = {}
    for num, wt, val in _fields(buf):
        if num == field and wt == 2:
            key = None
            sval = None
            for n2, w2, v2 in _fields(val):
                if n2 == 1 and w2 == 2:
                    key = v2.decode(errors="replace")
                elif n2 == 2 and w2 == 2:
                    for n3, w3, v3 in _fields(v2):
                        if n3 == 1 and w3 == 2:
                            sval = v3.decode(errors="replace")
                        elif n3 == 3 and w3 == 0:
                            sval = v3
                        elif n3 == 4 and w3 == 1:
                            import struct
                            sval = struct.unpack("<d", v3)[0]
                        elif n3 == 2 and w3 == 0:
                            sval = bool(v3)
            if key is not None:
                keys.append(key)
                values[key] = sval
    return keys, values


def _pb_sub(buf, field):
    return [val for num, wt, val in _fields(buf) if num == field and wt == 2]


def _pb_str(buf, field):
    for num, wt, val in _fields(buf):
        if num == field and wt == 2:
            return val.decode(errors="replace")
    return None


def _add(inv, kind, name, keys):
    bucket = inv.setdefault(kind, {}).setdefault(name or "?", set())
    bucket.update(keys)


def inventory_pb(sig, buf, inv):
    for rs in _pb_sub(buf, 1):
        for res in _pb_sub(rs, 1):
            keys, _ = _pb_kv_keys(res, 1)
            _add(inv, "resource", "resource", keys)
        for ss in _pb_sub(rs, 2):
            scope = None
            for sc in _pb_sub(ss, 1):
                scope = _pb_str(sc, 1)
            _add(inv, "scope", scope, [])
            if sig == "traces":
                for span in _pb_sub(ss, 2):
                    keys, _ = _pb_kv_keys(span, 9)
                    name = _pb_str(span, 5)
                    _add(inv, "span", name, keys)
                    for ev in _pb_sub(span, 11):
                        ekeys, evals = _pb_kv_keys(ev, 3)
                        # Codex names span events by source location; event.name is the name.
                        _add(inv, "span_event", evals.get("event.name") or _pb_str(ev, 2), ekeys)
            elif sig == "logs":
                for rec in _pb_sub(ss, 2):
                    keys, values = _pb_kv_keys(rec, 6)
                    name = values.get("event.name")
                    if not name:
                        ev = _pb_str(rec, 12)
                        name = ev if ev and " " not in ev else None
                    if not name:
                        for body in _pb_sub(rec, 5):
                            name = _pb_str(body, 1)
                    _add(inv, "event", name, keys)
            elif sig == "metrics":
                for metric in _pb_sub(ss, 2):
                    name = _pb_str(metric, 1)
                    keys = []
                    for kind, attr_field in ((5, 7), (7, 7), (9, 9), (10, 1), (11, 7)):
                        for data in _pb_sub(metric, kind):
                            for dp in _pb_sub(data, 1):
                                k, _ = _pb_kv_keys(dp, attr_field)
                                keys.extend(k)
                    _add(inv, "metric", name, keys)


def _json_keys(attrs):
    return [a.get("key") for a in attrs or [] if a.get("key")]


def _json_str(attrs, key):
    for a in attrs or []:
        if a.get("key") == key:
            return (a.get("value") or {}).get("stringValue")
    return None


def inventory_json(sig, doc, inv):
    top = {"traces": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}[sig]
    inner = {"traces": "scopeSpans", "logs": "scopeLogs", "metrics": "scopeMetrics"}[sig]
    for rs in doc.get(top) or []:
        _add(inv, "resource", "resource", _json_keys((rs.get("resource") or {}).get("attributes")))
        for ss in rs.get(inner) or []:
            _add(inv, "scope", (ss.get("scope") or {}).get("name"), [])
            if sig == "traces":
                for span in ss.get("spans") or []:
                    _add(inv, "span", span.get("name"), _json_keys(span.get("attributes")))
                    for ev in span.get("events") or []:
                        name = _json_str(ev.get("attributes"), "event.name") or ev.get("name")
                        _add(inv, "span_event", name, _json_keys(ev.get("attributes")))
            elif sig == "logs":
                for rec in ss.get("logRecords") or []:
                    name = _json_str(rec.get("attributes"), "event.name") or rec.get("eventName")
                    if not name or " " in name:
                        name = (rec.get("body") or {}).get("stringValue")
                    _add(inv, "event", name, _json_keys(rec.get("attributes")))
            elif sig == "metrics":
                for metric in ss.get("metrics") or []:
                    keys = []
                    for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                        for dp in (metric.get(kind) or {}).get("dataPoints") or []:
                            keys.extend(_json_keys(dp.get("attributes")))
                    _add(inv, "metric", metric.get("name"), keys)


def inventory(folder):
    """{kind: {name: [attribute keys]}} over every body of a capture folder."""
    inv = {}
    if not os.path.isdir(folder):
        return {}
    for name in sorted(os.listdir(folder)):
        m = re.match(r"\d{4}-(traces|logs|metrics)\.(bin|json)(\.gz)?$", name)
        if not m:
            continue
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        if m.group(3):
            data = gzip.decompress(data)
        try:
            if m.group(2) == "json":
                inventory_json(m.group(1), json.loads(data), inv)
            else:
                inventory_pb(m.group(1), data, inv)
        except (ValueError, IndexError, KeyError) as e:
            _add(inv, "undecodable", f"{name}: {e}", [])
    return {kind: {n: sorted(k) for n, k in names.items()} for kind, names in inv.items()}


def resource_attribute(folder, key):
    """The values of one resource attribute over a capture folder (JSON or protobuf bodies)."""
    values = set()
    if not os.path.isdir(folder):
        return values
    for name in sorted(os.listdir(folder)):
        m = re.match(r"\d{4}-(traces|logs|metrics)\.(bin|json)$", name)
        if not m:
            continue
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        try:
            if m.group(2) == "json":
                doc = json.loads(data)
                for top in ("resourceSpans", "resourceLogs", "resourceMetrics"):
                    for rs in doc.get(top) or []:
                        v = _json_str((rs.get("resource") or {}).get("attributes"), key)
                        if v:
                            values.add(v)
            else:
                for rs in _pb_sub(data, 1):
                    for res in _pb_sub(rs, 1):
                        _, vals = _pb_kv_keys(res, 1)
                        if vals.get(key):
                            values.add(vals[key])
        except (ValueError, IndexError):
            pass
    return values

"""The conformance suite: real agent CLIs -> (recording proxy) -> a real `antenna serve`, with a
mock model server; asserts what the host serves through its API.

    python3 tests/conformance/run.py --prefix DIR [--agents a,b] [--cases x,y] [--out DIR]

DIR is an npm prefix with the CLIs installed (tests/conformance/install prints it). Exit status
1 when an assertion failed, 0 otherwise (skips are printed, with their reason, never silent).
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
import mock_model  # noqa: E402
from http.server import ThreadingHTTPServer  # noqa: E402

USER = "conformance-user@example.com"
DEVICE = "conformance-device-1"
FALLBACK = "conformance-fallback"
FINAL = mock_model.FINAL_TEXT
SETTLE_SECONDS = float(os.environ.get("ANTENNA_CONFORMANCE_SETTLE", "20"))


# ---------------------------------------------------------------------------------------------
# Cases: (name, scenario(s), transport, content capture, known user)
# ---------------------------------------------------------------------------------------------

class Case:
    def __init__(self, name, scenarios, transport, content, known_user, spans=True):
        self.spans = spans  # Claude Code: the beta spans exported too (off by default for users)
        self.name = name
        self.scenarios = scenarios  # one per prompt; two prompts = a continued session
        self.transport = transport  # protobuf | json | grpc
        self.content = content
        self.known_user = known_user


def cases_for(agent):
    out = [
        Case("shell-protobuf", ["ok"], "protobuf", True, True),
        Case("shell-json-content-off-no-user", ["ok"], "json", False, False),
        Case("session-two-prompts", ["ok", "ok"], "protobuf", True, True),
        Case("failing-tool", ["fail"], "protobuf", True, True),
        Case("file-edit", ["edit"], "protobuf", True, True),
    ]
    if agent in ("claude-code", "gemini"):
        out.append(Case("shell-grpc", ["ok"], "grpc", True, True))
    if agent == "claude-code":
        # Claude Code's default: events and metrics, no beta spans.
        out.append(Case("session-logs-only", ["ok", "ok"], "protobuf", True, True, spans=False))
    if agent == "gemini":
        # Gemini CLI's `http` mode always sends OTLP/JSON; protobuf is what its gRPC mode sends.
        for c in out:
            if c.transport == "protobuf":
                c.transport = "json"
        out = [c for c in out if c.name != "shell-protobuf"]
    return out


# ---------------------------------------------------------------------------------------------
# Agents: how each CLI is run headless and offline, and what its conversion/placeholders are
# ---------------------------------------------------------------------------------------------

def base_env(home, prefix):
    node_dir = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    return {
        "PATH": f"{prefix}/node_modules/.bin:{node_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": os.path.join(home, "tmp"),
    }


def resource_attrs(case):
    attrs = "deployment.environment=conformance"
    if case.known_user:
        attrs += f",user.id={USER},host.id={DEVICE}"
    return attrs


class Agent:
    name = ""
    tool_placeholder_ok = True

    def __init__(self, ctx):
        self.ctx = ctx


class ClaudeCode(Agent):
    name = "claude-code"

    def env(self, case, run):
        e = {
            "ANTHROPIC_BASE_URL": run.mock_url,
            "ANTHROPIC_API_KEY": "dummy",
            "IS_SANDBOX": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization={harness.AUTH}",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization={harness.AUTH}",
            "OTEL_RESOURCE_ATTRIBUTES": resource_attrs(case),
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_LOGS_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        }
        if case.spans:
            e["CLAUDE_CODE_ENHANCED_TELEMETRY_BETA"] = "1"
            e["OTEL_TRACES_EXPORTER"] = "otlp"
        if case.transport == "grpc":
            e["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
            e["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{run.host.grpc}"
        else:
            e["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf" if case.transport == "protobuf" else "http/json"
            e["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"{run.otlp_url}/api/public/otel"
        if case.content:
            e.update({"OTEL_LOG_USER_PROMPTS": "1", "OTEL_LOG_ASSISTANT_RESPONSES": "1",
                      "OTEL_LOG_TOOL_DETAILS": "1", "OTEL_LOG_TOOL_CONTENT": "1"})
        return e

    def command(self, case, prompt, index, run):
        cmd = ["claude", "-p", prompt, "--dangerously-skip-permissions", "--output-format", "json"]
        if index > 0:
            cmd.append("--continue")
        return cmd

    def session_from(self, stdout, run, index):
        doc = json.loads(stdout.strip().splitlines()[-1])
        run.claude_cost = doc.get("total_cost_usd")
        return doc.get("session_id")

    def expected_prompt(self, case, prompt):
        return prompt if case.content else "[prompt not captured: OTEL_LOG_USER_PROMPTS is off]"

    def expected_response(self, case):
        return FINAL if case.content else "[response not captured: OTEL_LOG_ASSISTANT_RESPONSES is off]"


class Codex(Agent):
    name = "codex"

    def setup(self, case, run):
        codex_home = os.path.join(run.home, ".codex")
        os.makedirs(codex_home, exist_ok=True)
        proto = "binary" if case.transport == "protobuf" else "json"
        headers = f'headers = {{ Authorization = "{harness.AUTH}" }}'
        base = f"{run.otlp_url}/api/public/otel/v1"
        with open(os.path.join(codex_home, "config.toml"), "w") as f:
            f.write(f'''model = "gpt-5.3-codex"
model_provider = "mock"
check_for_update_on_startup = false

[model_providers.mock]
name = "mock"
base_url = "{run.mock_url}/v1"
env_key = "MOCK_OPENAI_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[otel]
environment = "conformance"
log_user_prompt = {"true" if case.content else "false"}
exporter = {{ otlp-http = {{ endpoint = "{base}/logs", protocol = "{proto}", {headers} }} }}
trace_exporter = {{ otlp-http = {{ endpoint = "{base}/traces", protocol = "{proto}", {headers} }} }}
metrics_exporter = {{ otlp-http = {{ endpoint = "{base}/metrics", protocol = "{proto}", {headers} }} }}
''')

    def env(self, case, run):
        return {"CODEX_HOME": os.path.join(run.home, ".codex"), "MOCK_OPENAI_API_KEY": "dummy",
                # Codex's exporters are configured in config.toml, but its resource takes
                # OTEL_RESOURCE_ATTRIBUTES (user.id, host.id).
                "OTEL_RESOURCE_ATTRIBUTES": resource_attrs(case)}

    def command(self, case, prompt, index, run):
        flags = ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
        if index > 0:
            return ["codex", "exec", *flags, "resume", "--last", prompt]
        return ["codex", "exec", *flags, prompt]

    def session_from(self, stdout, run, index):
        for line in stdout.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("type") == "thread.started":
                return doc.get("thread_id")
        return None

    def expected_prompt(self, case, prompt):
        return prompt if case.content else None  # placeholder checked loosely

    def expected_response(self, case):
        return "[response not exported by Codex]"


class Gemini(Agent):
    name = "gemini"

    def setup(self, case, run):
        gemini_dir = os.path.join(run.home, ".gemini")
        os.makedirs(gemini_dir, exist_ok=True)
        if case.transport == "grpc":
            telemetry = {"otlpEndpoint": f"http://{run.host.grpc}", "otlpProtocol": "grpc"}
        else:
            telemetry = {"otlpEndpoint": f"{run.otlp_url}/api/public/otel", "otlpProtocol": "http"}
        telemetry.update({"enabled": True, "target": "local", "logPrompts": case.content, "traces": True})
        settings = {"security": {"auth": {"selectedType": "gemini-api-key"}},
                    "privacy": {"usageStatisticsEnabled": False},
                    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
                    "telemetry": telemetry}
        with open(os.path.join(gemini_dir, "settings.json"), "w") as f:
            json.dump(settings, f)
        run.gemini_session = None

    def env(self, case, run):
        return {"GOOGLE_GEMINI_BASE_URL": run.mock_url, "GEMINI_API_KEY": "dummy",
                "GEMINI_CLI_TRUST_WORKSPACE": "true",
                "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization={harness.AUTH}",
                "OTEL_RESOURCE_ATTRIBUTES": resource_attrs(case)}

    def command(self, case, prompt, index, run):
        cmd = ["gemini", "-p", prompt, "--yolo", "--output-format", "json"]
        if index > 0:
            cmd += ["--resume", "latest"]
        return cmd

    def session_from(self, stdout, run, index):
        try:
            doc, _ = json.JSONDecoder().raw_decode(stdout[stdout.index("{"):])
            if doc.get("session_id"):
                return doc["session_id"]
        except ValueError:
            pass
        return None

    def expected_prompt(self, case, prompt):
        return prompt if case.content else None

    def expected_response(self, case):
        return FINAL if case.content else None


class Copilot(Agent):
    name = "copilot"

    def env(self, case, run):
        auth = harness.AUTH.replace(" ", "%20")
        e = {"COPILOT_OFFLINE": "true",
             "COPILOT_PROVIDER_BASE_URL": f"{run.mock_url}/v1",
             "COPILOT_PROVIDER_TYPE": "openai",
             "COPILOT_PROVIDER_API_KEY": "dummy",
             "COPILOT_MODEL": "gpt-4.1",
             "COPILOT_OTEL_ENABLED": "true",
             "OTEL_EXPORTER_OTLP_ENDPOINT": f"{run.otlp_url}/api/public/otel",
             "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf" if case.transport == "protobuf" else "http/json",
             "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization={auth}",
             "OTEL_SERVICE_NAME": "github-copilot",
             "OTEL_RESOURCE_ATTRIBUTES": resource_attrs(case),
             "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true" if case.content else "false"}
        return e

    def command(self, case, prompt, index, run):
        cmd = ["copilot", "-p", prompt, "--allow-all", "--no-color"]
        if index > 0:
            cmd.append("--continue")
        return cmd

    def session_from(self, stdout, run, index):
        m = re.search(r"--resume=([0-9a-f-]{36})", stdout)
        return m.group(1) if m else None

    def expected_prompt(self, case, prompt):
        return prompt if case.content else None

    def expected_response(self, case):
        return FINAL if case.content else None


AGENTS = {"claude-code": ClaudeCode, "codex": Codex, "gemini": Gemini, "copilot": Copilot}
BINARIES = {"claude-code": "claude", "codex": "codex", "gemini": "gemini", "copilot": "copilot"}


# ---------------------------------------------------------------------------------------------
# One run of one case
# ---------------------------------------------------------------------------------------------

class Run:
    pass


class Checker:
    def __init__(self, label):
        self.label = label
        self.failures = []
        self.passed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failures.append(f"{what}: expected {want!r}, got {got!r}")

    def true(self, what, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failures.append(f"{what}{': ' + detail if detail else ''}")


def strip_suffix(model):
    return re.sub(r"\[[^\]]*\]$", "", model or "")


def mock_calls(log_path, start, end):
    calls = []
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            if start <= c["seq"] <= end:
                calls.append(c)
    return calls


def last_seq(log_path):
    seq = 0
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            seq = json.loads(line)["seq"]
    return seq


def run_case(ctx, agent_cls, case):
    agent = agent_cls(ctx)
    label = f"{agent.name}/{case.name}"
    check = Checker(label)
    run = Run()
    run.home = tempfile.mkdtemp(prefix="antenna-conf-home-")
    os.makedirs(os.path.join(run.home, "tmp"), exist_ok=True)
    run.work = os.path.join(run.home, "work")
    os.makedirs(run.work)
    with open(os.path.join(run.work, "README.md"), "w") as f:
        f.write("# conformance\n")
    with open(os.path.join(run.work, "main.py"), "w") as f:
        f.write("print('hello')\n")
    run.mock_url = ctx.mock_url
    capture_dir = os.path.join(ctx.out, "captures", agent.name, case.name)
    shutil.rmtree(capture_dir, ignore_errors=True)
    os.makedirs(capture_dir, exist_ok=True)
    host_log = os.path.join(ctx.out, "logs", f"{agent.name}-{case.name}-host.log")
    run.host = harness.Host(ctx.binary, ctx.cache_dir, host_log,
                            fallback_user=None if case.known_user else FALLBACK)
    recorder = harness.Recorder(run.host.url())
    recorder.record_into(capture_dir)
    run.otlp_url = f"http://127.0.0.1:{recorder.port}"
    result = {"agent": agent.name, "case": case.name, "transport": case.transport,
              "content": case.content, "known_user": case.known_user, "captures": capture_dir}
    try:
        if hasattr(agent, "setup"):
            agent.setup(case, run)
        prompts = []
        for index, scenario in enumerate(case.scenarios):
            verb = {"ok": "List the files in the current directory using the shell",
                    "fail": "Show the contents of missing.txt using the shell",
                    "edit": "Create the file notes.txt in the working directory"}[scenario]
            prompt = f"{verb}, then summarize. (prompt {index + 1}) [conformance:{scenario}] [workdir:{run.work}]"
            env = harness_env(agent, case, run)
            before = last_seq(ctx.mock_log)
            t0 = time.time()
            proc = subprocess.run(agent.command(case, prompt, index, run), cwd=run.work, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
            elapsed = time.time() - t0
            after = last_seq(ctx.mock_log)
            with open(os.path.join(ctx.out, "logs", f"{agent.name}-{case.name}-{index + 1}.out"), "w") as f:
                f.write(f"$ {' '.join(agent.command(case, prompt, index, run))}\nexit {proc.returncode} "
                        f"in {elapsed:.1f}s\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}\n")
            calls = mock_calls(ctx.mock_log, before + 1, after)
            # What the model served this prompt, beside the capture (tests derive numbers from it).
            with open(os.path.join(capture_dir, "mock-calls.jsonl"), "a", encoding="utf-8") as f:
                for c in calls:
                    f.write(json.dumps(dict(c, prompt=index + 1)) + "\n")
            if proc.returncode != 0:
                check.failures.append(f"prompt {index + 1}: the CLI exited with {proc.returncode} (see "
                                      f"logs/{agent.name}-{case.name}-{index + 1}.out): "
                                      f"{(proc.stderr or proc.stdout).strip()[-300:]}")
            else:
                check.passed += 1
            session = None
            try:
                session = agent.session_from(proc.stdout + proc.stderr, run, index)
            except (ValueError, IndexError, KeyError) as e:
                check.failures.append(f"prompt {index + 1}: no session id in the CLI's output ({e})")
            prompts.append({"prompt": prompt, "scenario": scenario, "calls": calls, "session": session,
                            "started": t0, "ended": time.time()})
        wait_and_check(ctx, agent, case, run, prompts, check)
        result["mock_calls"] = sum(len(p["calls"]) for p in prompts)
    except Exception as e:  # a crash of the harness is a failure of the case, reported
        check.failures.append(f"harness error: {e!r}\n{traceback.format_exc()}")
    finally:
        time.sleep(0.2)
        recorder.stop()
        run.host.stop()
        result["otlp_statuses"] = [f"{p} {s}" for p, s, _ in recorder.statuses]
        bad = [(p, s, b) for p, s, b in recorder.statuses if s != 200]
        if bad:
            check.failures.append(f"the host refused OTLP requests: {bad[:3]}")
        shutil.rmtree(run.home, ignore_errors=True)
    if case.transport == "grpc":
        check.eq("OTLP/HTTP requests (none: the traces came over gRPC)", len(metas(capture_dir)), 0)
        with open(os.path.join(capture_dir, "NOT-RECORDED.txt"), "w") as f:
            f.write("OTLP/gRPC went straight to the host's gRPC port: the recording proxy speaks HTTP/1.1 only,\n"
                    "so this run's bodies were not kept (the host stored them; they are not served).\n")
    else:
        # The transport asked for is the one used: every request in its content type, and at
        # least one request of each signal the agent sends.
        want_type = "application/json" if case.transport == "json" else "application/x-protobuf"
        types = sorted({m.get("content_type") for m in metas(capture_dir)})
        check.eq("OTLP requests' content type", types, [want_type])
        signals = sorted({m.get("signal") for m in metas(capture_dir)})
        want_signals = ["metrics", "traces"] if agent.name == "copilot" else ["logs", "metrics", "traces"]
        if not case.spans:
            want_signals = ["logs", "metrics"]
        check.eq("OTLP signals sent", signals, want_signals)
    result["inventory"] = harness.inventory(capture_dir)
    result["passed"] = check.passed
    result["failures"] = check.failures
    result["status"] = "fail" if check.failures else "pass"
    return result


def metas(folder):
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".meta.json"):
            with open(os.path.join(folder, name)) as f:
                out.append(json.load(f))
    return out


def harness_env(agent, case, run):
    env = base_env(run.home, ctx_prefix())
    env.update(agent.env(case, run))
    return env


_PREFIX = {}


def ctx_prefix():
    return _PREFIX["prefix"]


def expected_totals(calls):
    keys = ("input", "output", "cache_read", "cache_creation", "reasoning")
    return {k: sum(c["normalized"][k] for c in calls) for k in keys}


def trace_totals(trace):
    return {"input": trace.get("input_tokens"), "output": trace.get("output_tokens"),
            "cache_read": trace.get("cache_read_tokens"), "cache_creation": trace.get("cache_creation_tokens"),
            "reasoning": trace.get("reasoning_tokens")}


def wait_and_check(ctx, agent, case, run, prompts, check):
    want_totals = [expected_totals(p["calls"]) for p in prompts]
    deadline = time.time() + SETTLE_SECONDS
    traces = []
    while time.time() < deadline:
        traces = run.host.traces()
        got = sorted(json.dumps(trace_totals(t), sort_keys=True) for t in traces)
        want = sorted(json.dumps(w, sort_keys=True) for w in want_totals)
        if got == want:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # anything late (a metric export on shutdown) lands before the last read
    traces = sorted(run.host.traces(), key=lambda t: t.get("start_time") or "")
    with open(os.path.join(ctx.out, "logs", f"{agent.name}-{case.name}-traces.json"), "w") as f:
        json.dump([run.host.get(f"/api/public/traces/{t['id']}") for t in traces], f, indent=1)
    check.eq("traces (one per prompt)", len(traces), len(prompts))
    if not traces:
        return
    sessions = {t.get("session_id") for t in traces}
    check.eq("sessions", len(sessions), 1)
    api_sessions = run.host.get("/api/public/sessions").get("data") or []
    check.eq("GET /api/public/sessions: one session", len(api_sessions), 1)
    if len(api_sessions) == 1 and len(sessions) == 1:
        sid = next(iter(sessions))
        one = run.host.get(f"/api/public/sessions/{urllib.parse.quote(str(sid), safe='')}")
        check.eq("GET /api/public/sessions/{id}: its traces", len(one.get("traces") or []), len(prompts))
    for index, p in enumerate(prompts):
        if index >= len(traces):
            break
        t = traces[index]
        detail = run.host.get(f"/api/public/traces/{t['id']}")
        where = f"prompt {index + 1}"
        check.eq(f"{where}: agent", t.get("agent"), agent.name)
        if p["session"]:
            check.eq(f"{where}: session_id (as the CLI reported it)", t.get("session_id"), p["session"])
        if index > 0 and prompts[0]["session"]:
            check.eq(f"{where}: the continued session's id", t.get("session_id"), prompts[0]["session"])
        if case.known_user:
            check.eq(f"{where}: user_id", t.get("user_id"), USER)
            check.eq(f"{where}: device_id", t.get("device_id"), DEVICE)
        else:
            want_user = FALLBACK
            if agent.name == "copilot":
                pseudo = harness.resource_attribute(os.path.join(ctx.out, "captures", agent.name, case.name),
                                                    "enduser.pseudo.id")
                # Its pseudonymous id when it sends one (this version, offline in BYOK mode, sends none).
                want_user = next(iter(pseudo)) if len(pseudo) == 1 else FALLBACK
            check.eq(f"{where}: user_id (no user.id sent)", t.get("user_id"), want_user)
            check.eq(f"{where}: device_id (no host.id sent)", t.get("device_id"), None)
        want_models = sorted({strip_suffix(c["model"]) for c in p["calls"]})
        check.eq(f"{where}: models", sorted(t.get("models") or []), want_models)
        check.eq(f"{where}: tokens (mock's usage, normalized)", trace_totals(t), want_totals[index])
        # Tool calls: what the mock asked for, in the agent's own names.
        asked = [c for c in p["calls"] if c.get("tool")]
        tools = detail.get("tool_calls") or []
        check.eq(f"{where}: tool calls", [x.get("name") for x in tools], [c["tool"] for c in asked])
        for x, c in zip(tools, asked):
            success = p["scenario"] != "fail"
            check.eq(f"{where}: tool {x.get('name')} success", x.get("success"), success)
            args, result = x.get("args"), x.get("result")
            if case.content:
                needle = "missing.txt" if p["scenario"] == "fail" else ("notes.txt" if p["scenario"] == "edit" else "ls")
                check.true(f"{where}: tool args carry the call's input", isinstance(args, str) and needle in args,
                           repr(args))
                if p["scenario"] == "ok" and not case.spans:
                    # Claude Code exports a tool's output only on its beta spans.
                    check.eq(f"{where}: tool result (no spans: not captured)", result,
                             "[result not captured: CLAUDE_CODE_ENHANCED_TELEMETRY_BETA is off]")
                elif p["scenario"] == "ok":
                    check.true(f"{where}: tool result is the listing (README.md, main.py)",
                               isinstance(result, str) and "README.md" in result and "main.py" in result, repr(result))
                elif p["scenario"] == "fail":
                    # What each agent exports of a failed command differs (Claude Code only
                    # "Shell command failed"; the others the command's output).
                    check.true(f"{where}: tool result carries the failure",
                               isinstance(result, str) and bool(result.strip()), repr(result))
            else:
                for fld, val in (("args", args), ("result", result)):
                    check.true(f"{where}: tool {fld} is a placeholder or the agent's own (content off)",
                               val is None or isinstance(val, str), repr(val))
        if p["scenario"] == "edit":
            path = os.path.join(run.work, "notes.txt")
            written = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            check.true(f"{where}: the edit happened (notes.txt written by the agent)",
                       written is not None and mock_model.EDIT_CONTENT in written, repr(written))
        # Texts
        want_prompt = agent.expected_prompt(case, p["prompt"])
        if want_prompt is not None:
            check.eq(f"{where}: prompt", detail.get("prompt"), want_prompt)
        else:
            check.true(f"{where}: prompt is a placeholder (content off)",
                       isinstance(detail.get("prompt"), str) and detail["prompt"].startswith("[prompt not"),
                       repr(detail.get("prompt")))
        want_response = agent.expected_response(case)
        if want_response is not None:
            check.eq(f"{where}: response", detail.get("response"), want_response)
        else:
            check.true(f"{where}: response is a placeholder (content off)",
                       isinstance(detail.get("response"), str) and detail["response"].startswith("[response not"),
                       repr(detail.get("response")))
        # Cost: Claude Code reports its own; the others none (a price table may fill it).
        if agent.name == "claude-code":
            check.eq(f"{where}: cost_source", t.get("cost_source", "agent"), "agent")
            check.true(f"{where}: cost_usd reported", isinstance(t.get("cost_usd"), (int, float)) and t["cost_usd"] > 0,
                       repr(t.get("cost_usd")))
        else:
            check.true(f"{where}: cost is the price table's or none",
                       t.get("cost_source") in (None, "price-table"), repr(t.get("cost_source")))
    if agent.name == "claude-code" and len(prompts) == 1 and getattr(run, "claude_cost", None):
        check.true("cost_usd equals the CLI's total_cost_usd",
                   abs((traces[0].get("cost_usd") or 0) - run.claude_cost) < 1e-9,
                   f"{traces[0].get('cost_usd')} vs {run.claude_cost}")
    # Users endpoint agrees with the traces: one user, one session, as many traces as prompts.
    users = run.host.get("/api/public/users").get("data") or []
    check.eq("GET /api/public/users: one user", len(users), 1)
    if users:
        check.eq("GET /api/public/users: sessions of the user", users[0].get("sessions"), 1)
        check.eq("GET /api/public/users: traces of the user", users[0].get("traces"), len(prompts))
    # Usage per agent: the sum over the traces (the five counts, prompts, sessions).
    try:
        usage = run.host.get("/api/public/usage?group_by=agent").get("data") or []
    except urllib.error.HTTPError as e:
        usage = None
        check.failures.append(f"GET /api/public/usage: {e.code}")
    if usage is not None:
        with open(os.path.join(ctx.out, "logs", f"{agent.name}-{case.name}-usage.json"), "w") as f:
            json.dump(usage, f, indent=1)
        check.eq("GET /api/public/usage?group_by=agent: one group", [u.get("key") for u in usage], [agent.name])
        if usage:
            u = usage[0]
            want = {k: sum(w[k] for w in want_totals) for k in want_totals[0]}
            got = {"input": u.get("input_tokens"), "output": u.get("output_tokens"),
                   "cache_read": u.get("cache_read_tokens"), "cache_creation": u.get("cache_creation_tokens"),
                   "reasoning": u.get("reasoning_tokens")}
            check.eq("usage: tokens (all prompts' calls)", got, want)
            check.eq("usage: prompts", u.get("prompts"), len(prompts))
            check.eq("usage: sessions", u.get("sessions"), 1)
            check.eq("usage: tool calls", u.get("tool_calls"), sum(1 for p in prompts for c in p["calls"] if c.get("tool")))
            check.eq("usage: tool failures", u.get("tool_failures"),
                     sum(1 for p in prompts for c in p["calls"] if c.get("tool") and p["scenario"] == "fail"))
    try:
        outcomes = run.host.get("/api/public/outcomes?group_by=agent").get("data") or []
    except urllib.error.HTTPError as e:
        outcomes = None
        check.failures.append(f"GET /api/public/outcomes: {e.code}")
    if outcomes is not None:
        with open(os.path.join(ctx.out, "logs", f"{agent.name}-{case.name}-outcomes.json"), "w") as f:
            json.dump(outcomes, f, indent=1)
    edits = sum(1 for p in prompts if p["scenario"] == "edit")
    if outcomes is not None and edits:
        # The lines the agent reports for the one-line file the mock had it write. Codex 0.169
        # reports no line counts (no outcome group at all).
        if agent.name == "codex":
            check.eq("outcomes: Codex reports no lines", outcomes, [])
        else:
            got = outcomes[0] if outcomes else {}
            check.eq("outcomes: lines added (the one-line file)", got.get("lines_added"), float(edits))
            check.eq("outcomes: lines removed", got.get("lines_removed"), 0.0)
            if agent.name == "claude-code":
                check.eq("outcomes: edits accepted (Claude Code's code_edit_tool.decision)",
                         got.get("edits_accepted"), float(edits))


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--agents", default="claude-code,codex,gemini,copilot")
    ap.add_argument("--cases", default="")
    ap.add_argument("--label", default="pinned")
    args = ap.parse_args()
    _PREFIX["prefix"] = args.prefix
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)

    class Ctx:
        pass

    ctx = Ctx()
    ctx.out = args.out
    ctx.binary = args.binary
    ctx.cache_dir = os.path.join(os.path.dirname(args.out.rstrip("/")), "compiled-cache")
    os.makedirs(ctx.cache_dir, mode=0o700, exist_ok=True)
    ctx.mock_log = os.path.join(args.out, "mock-calls.jsonl")
    open(ctx.mock_log, "w").close()
    mock_model.STATE["log"] = ctx.mock_log
    mock_model.STATE["calls"] = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), mock_model.Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ctx.mock_url = f"http://127.0.0.1:{server.server_address[1]}"

    versions = {}
    for agent in args.agents.split(","):
        pkg = {"claude-code": "@anthropic-ai/claude-code", "codex": "@openai/codex",
               "gemini": "@google/gemini-cli", "copilot": "@github/copilot"}[agent]
        try:
            with open(os.path.join(args.prefix, "node_modules", pkg, "package.json")) as f:
                versions[agent] = json.load(f)["version"]
        except OSError:
            versions[agent] = None
    results = []
    started = time.time()
    wanted_cases = set(filter(None, args.cases.split(",")))
    for agent in args.agents.split(","):
        binary = os.path.join(args.prefix, "node_modules", ".bin", BINARIES[agent])
        for case in cases_for(agent):
            if wanted_cases and case.name not in wanted_cases:
                continue
            if not os.path.exists(binary):
                r = {"agent": agent, "case": case.name, "status": "skip",
                     "reason": f"{binary} is not installed (npm install failed?)", "failures": []}
            else:
                t0 = time.time()
                r = run_case(ctx, AGENTS[agent], case)
                r["seconds"] = round(time.time() - t0, 1)
            results.append(r)
            mark = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[r["status"]]
            extra = f" ({r.get('seconds')} s, {r.get('passed', 0)} checks)" if r["status"] != "skip" else f": {r['reason']}"
            print(f"{mark} {agent}@{versions.get(agent)} {case.name}{extra}", flush=True)
            for f in r["failures"]:
                print(f"     - {f}", flush=True)
    server.shutdown()
    report = {"label": args.label, "versions": versions, "seconds": round(time.time() - started, 1),
              "results": results}
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    failed = [r for r in results if r["status"] == "fail"]
    skipped = [r for r in results if r["status"] == "skip"]
    print(f"conformance ({args.label}): {len(results) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped in {report['seconds']} s; captures and report in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

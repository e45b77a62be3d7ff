"""A mock model server for the conformance suite (Python 3.11 standard library only).

It speaks, streamed the way each client expects:
  - Anthropic Messages          POST /v1/messages                      (SSE, or JSON when stream is false)
  - OpenAI Responses            POST /v1/responses                     (SSE)
  - OpenAI Chat Completions     POST /v1/chat/completions              (SSE chunks, or JSON)
  - Gemini                      POST /v1beta/models/M:generateContent and :streamGenerateContent?alt=sse

Behaviour: the prompt carries a marker `[conformance:<scenario>]` (ok | fail | edit). When the
request offers tools and its last user turn is not a tool result, the answer is ONE tool call
(ok: the shell runs `ls`; fail: the shell runs `cat missing.txt`, exit 1; edit: a file-writing
tool creates notes.txt in the working directory named in the prompt); otherwise the answer is
text. A request asking for JSON output (Gemini's model router) gets an object built from its
schema.

Every answer reports usage, distinct per call: call k (1-based, counted over the server's
life) reports fresh input 1000+10k, cache read 200+k, output 50+k, and, where the API has them,
cache creation 100+k (Anthropic) or reasoning/thoughts 10+k (OpenAI, Gemini), each written in
the API's own convention (Anthropic: input excludes cache; OpenAI: input includes cached, output
includes reasoning; Gemini: prompt count includes cached, thoughts apart). Each call is appended
as one JSON line to the log file (--log) with the raw usage served and the same usage in the
blueprint's normalized form (every token once), which is what the suite's expectations sum.
"""

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = re.compile(r"\[conformance:([a-z-]+)\]")
WORKDIR = re.compile(r"\[workdir:([^\]]+)\]")
SHELL_TOOLS = ("Bash", "exec_command", "shell", "run_shell_command", "bash", "shell_command")
WRITE_TOOLS = ("Write", "write_file", "create", "apply_patch")
FINAL_TEXT = "Done. The command ran and I summarized its result."
EDIT_CONTENT = "conformance edit"  # one line, no newline: every agent counts it as 1
COMMANDS = {"ok": "ls", "fail": "cat missing.txt", "edit": "ls"}

VERBOSE = bool(os.environ.get("ANTENNA_CONFORMANCE_VERBOSE"))
LOCK = threading.Lock()
STATE = {"calls": 0, "log": None}


def next_usage():
    with LOCK:
        STATE["calls"] += 1
        k = STATE["calls"]
    return k, {
        "input": 1000 + 10 * k,
        "cache_read": 200 + k,
        "cache_creation": 100 + k,
        "output": 50 + k,
        "reasoning": 10 + k,
    }


def log_call(entry):
    entry["time"] = time.time()
    with LOCK:
        with open(STATE["log"], "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def texts_of(value):
    """Every string inside a JSON value (to find the markers wherever an agent put the prompt)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from texts_of(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from texts_of(v)


def find(pattern, value, default=None):
    found = default
    for text in texts_of(value):
        for m in pattern.finditer(text):
            found = m.group(1)
    return found


def default_for(name, schema, command, workdir):
    """A value for one tool parameter, from its name and JSON schema."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    lname = name.lower()
    if lname in ("command", "cmd"):
        return ["bash", "-lc", command] if kind == "array" else command
    if lname in ("file_path", "path", "absolute_path", "filepath"):
        return f"{workdir}/notes.txt"
    if lname in ("content", "file_text", "text", "contents"):
        return EDIT_CONTENT
    if lname == "description":
        return "conformance step"
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 10
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "conformance"


def args_for(tool, command, workdir):
    params = tool.get("parameters") or tool.get("input_schema") or tool.get("parametersJsonSchema") or {}
    props = params.get("properties") or {}
    required = params.get("required") or []
    out = {}
    for name in props:
        if name in required or name.lower() in ("command", "cmd", "file_path", "path", "content", "file_text"):
            out[name] = default_for(name, props[name], command, workdir)
    return out


def choose_tool(tools, scenario, workdir):
    """(name, args) of the one tool call for this scenario, or None when no suitable tool is offered."""
    by_name = {t.get("name"): t for t in tools if t.get("name")}
    if scenario == "edit":
        for name in WRITE_TOOLS:
            if name in by_name:
                if name == "apply_patch":
                    patch = (
                        "*** Begin Patch\n*** Add File: notes.txt\n+"
                        + EDIT_CONTENT
                        + "\n*** End Patch\n"
                    )
                    tool = by_name[name]
                    if tool.get("_freeform"):
                        return name, patch
                    return name, {"input": patch}
                return name, args_for(by_name[name], "", workdir)
    command = COMMANDS.get(scenario, "ls")
    if scenario == "edit":
        # No file-writing tool offered (Codex without model metadata offers only its shell):
        # the patch through the shell, which Codex recognises as apply_patch.
        command = ("apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: notes.txt\n+"
                   + EDIT_CONTENT + "\n*** End Patch\nEOF\n")
    for name in SHELL_TOOLS:
        if name in by_name:
            return name, args_for(by_name[name], command, workdir)
    return None


def schema_object(schema):
    """A JSON value satisfying a (simple) JSON schema: what the model router asks for."""
    kind = schema.get("type", "object")
    if isinstance(kind, str):
        kind = kind.lower()
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object":
        return {k: schema_object(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 10
    if kind == "boolean":
        return False
    return "conformance"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        # Requests are in the call log; anything the mock does not serve (404) is said.
        if VERBOSE or (len(args) > 1 and str(args[1]) not in ("200",)):
            sys.stderr.write("mock: " + (fmt % args) + "\n")

    # ---- plumbing -------------------------------------------------------------------------
    def body_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {}

    def send_json(self, obj, status=200, extra_headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self, extra_headers=None):
        self.send_response(200)
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data, event=None):
        chunk = ""
        if event:
            chunk += f"event: {event}\n"
        chunk += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
        self.wfile.write(chunk.encode())
        self.wfile.flush()

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.endswith("/models"):
            self.send_json({"object": "list", "data": [{"id": "gpt-5.1-codex", "object": "model"}, {"id": "gpt-4.1", "object": "model"}], "models": []})
            return
        self.send_json({"error": {"message": f"mock: no GET {path}"}}, 404)

    def do_POST(self):
        path = self.path.split("?")[0]
        body = self.body_json()
        try:
            if path.endswith("/messages"):
                self.anthropic(body)
            elif path.endswith("/responses"):
                self.openai_responses(body)
            elif path.endswith("/chat/completions"):
                self.chat(body)
            elif ":streamGenerateContent" in path or ":generateContent" in path:
                self.gemini(path, body)
            elif "/analytics/" in path:
                self.send_json({})  # Codex posts its turn costs; nothing to say
            elif path.endswith(":countTokens"):
                self.send_json({"totalTokens": 10})
            else:
                self.send_json({"error": {"message": f"mock: nothing at POST {path}"}}, 404)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ---- Anthropic Messages ---------------------------------------------------------------
    def anthropic(self, body):
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        content = last.get("content")
        is_tool_result = isinstance(content, list) and any(
            isinstance(c, dict) and c.get("type") == "tool_result" for c in content
        )
        scenario = find(MARKER, last, None) or find(MARKER, messages, "ok")
        workdir = find(WORKDIR, messages, "/tmp")
        tools = body.get("tools") or []
        choice = None if is_tool_result or not tools else choose_tool(tools, scenario, workdir)
        k, u = next_usage()
        model = body.get("model", "claude")
        raw = {
            "input_tokens": u["input"],
            "cache_read_input_tokens": u["cache_read"],
            "cache_creation_input_tokens": u["cache_creation"],
            "output_tokens": u["output"],
        }
        normalized = {"input": u["input"], "output": u["output"], "cache_read": u["cache_read"],
                      "cache_creation": u["cache_creation"], "reasoning": 0}
        log_call({"seq": k, "api": "anthropic", "model": model, "scenario": scenario,
                  "tools_offered": sorted(t.get("name") or "?" for t in tools), "tool": choice[0] if choice else None,
                  "args": choice[1] if choice else None, "usage": raw, "normalized": normalized})
        msg_id = f"msg_mock_{k}"
        if choice:
            block = {"type": "tool_use", "id": f"toolu_mock_{k}", "name": choice[0], "input": choice[1]}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": FINAL_TEXT}
            stop = "end_turn"
        if not body.get("stream"):
            self.send_json({"id": msg_id, "type": "message", "role": "assistant", "model": model,
                            "content": [block], "stop_reason": stop, "stop_sequence": None, "usage": raw},
                           extra_headers={"request-id": f"req_mock_{k}"})
            return
        # Like the real API, every answer names its request (Claude Code reports it as request_id).
        self.start_sse({"request-id": f"req_mock_{k}"})
        start_usage = dict(raw, output_tokens=1)
        self.sse({"type": "message_start", "message": {"id": msg_id, "type": "message", "role": "assistant",
                  "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
                  "usage": start_usage}}, "message_start")
        if choice:
            self.sse({"type": "content_block_start", "index": 0,
                      "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}},
                     "content_block_start")
            self.sse({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "input_json_delta", "partial_json": json.dumps(choice[1])}},
                     "content_block_delta")
        else:
            self.sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                     "content_block_start")
            self.sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": FINAL_TEXT}},
                     "content_block_delta")
        self.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self.sse({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                  "usage": {"output_tokens": u["output"], "input_tokens": u["input"],
                            "cache_read_input_tokens": u["cache_read"],
                            "cache_creation_input_tokens": u["cache_creation"]}}, "message_delta")
        self.sse({"type": "message_stop"}, "message_stop")

    # ---- OpenAI usage ---------------------------------------------------------------------
    @staticmethod
    def openai_usage(u):
        normalized = {"input": u["input"], "output": u["output"], "cache_read": u["cache_read"],
                      "cache_creation": 0, "reasoning": u["reasoning"]}
        return normalized

    # ---- OpenAI Responses -----------------------------------------------------------------
    def openai_responses(self, body):
        items = body.get("input") or []
        if isinstance(items, str):
            items = [{"type": "message", "role": "user", "content": items}]
        last = items[-1] if items else {}
        is_tool_result = last.get("type") in ("function_call_output", "custom_tool_call_output")
        user_items = [i for i in items if i.get("role") == "user"]
        scenario = find(MARKER, user_items[-1:], None) or "ok"
        workdir = find(WORKDIR, items, "/tmp")
        tools = []
        for t in body.get("tools") or []:
            if t.get("type") == "function":
                tools.append(t)
            elif t.get("type") == "custom":
                tools.append(dict(t, _freeform=True))
        choice = None if is_tool_result or not tools else choose_tool(tools, scenario, workdir)
        k, u = next_usage()
        model = body.get("model", "gpt")
        raw = {"input_tokens": u["input"] + u["cache_read"],
               "input_tokens_details": {"cached_tokens": u["cache_read"]},
               "output_tokens": u["output"] + u["reasoning"],
               "output_tokens_details": {"reasoning_tokens": u["reasoning"]}}
        raw["total_tokens"] = raw["input_tokens"] + raw["output_tokens"]
        log_call({"seq": k, "api": "responses", "model": model, "scenario": scenario,
                  "tools_offered": sorted(t.get("name") or "?" for t in tools), "tool": choice[0] if choice else None,
                  "args": choice[1] if choice else None, "usage": raw, "normalized": self.openai_usage(u)})
        resp_id = f"resp_mock_{k}"
        if choice:
            name, args = choice
            freeform = any(t.get("name") == name and t.get("_freeform") for t in tools)
            if freeform:
                item = {"type": "custom_tool_call", "id": f"ctc_mock_{k}", "call_id": f"call_mock_{k}",
                        "name": name, "input": args if isinstance(args, str) else json.dumps(args),
                        "status": "completed"}
            else:
                item = {"type": "function_call", "id": f"fc_mock_{k}", "call_id": f"call_mock_{k}",
                        "name": name, "arguments": json.dumps(args), "status": "completed"}
        else:
            item = {"type": "message", "id": f"msg_mock_{k}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": FINAL_TEXT, "annotations": []}]}
        response = {"id": resp_id, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": model, "output": [item], "usage": raw}
        self.start_sse()
        self.sse({"type": "response.created", "response": dict(response, status="in_progress", output=[], usage=None)},
                 "response.created")
        self.sse({"type": "response.output_item.added", "output_index": 0, "item": item}, "response.output_item.added")
        if item["type"] == "message":
            self.sse({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                      "content_index": 0, "delta": FINAL_TEXT}, "response.output_text.delta")
        self.sse({"type": "response.output_item.done", "output_index": 0, "item": item}, "response.output_item.done")
        self.sse({"type": "response.completed", "response": response}, "response.completed")

    # ---- OpenAI Chat Completions ----------------------------------------------------------
    def chat(self, body):
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        is_tool_result = last.get("role") == "tool"
        user_msgs = [m for m in messages if m.get("role") == "user"]
        scenario = find(MARKER, user_msgs[-1:], None) or "ok"
        workdir = find(WORKDIR, messages, "/tmp")
        tools = [dict(t["function"]) for t in body.get("tools") or [] if isinstance(t.get("function"), dict)]
        choice = None if is_tool_result or not tools else choose_tool(tools, scenario, workdir)
        k, u = next_usage()
        model = body.get("model", "gpt-4.1")
        raw = {"prompt_tokens": u["input"] + u["cache_read"],
               "prompt_tokens_details": {"cached_tokens": u["cache_read"]},
               "completion_tokens": u["output"] + u["reasoning"],
               "completion_tokens_details": {"reasoning_tokens": u["reasoning"]}}
        raw["total_tokens"] = raw["prompt_tokens"] + raw["completion_tokens"]
        log_call({"seq": k, "api": "chat", "model": model, "scenario": scenario,
                  "tools_offered": sorted(t.get("name") or "?" for t in tools), "tool": choice[0] if choice else None,
                  "args": choice[1] if choice else None, "usage": raw, "normalized": self.openai_usage(u)})
        cid = f"chatcmpl-mock-{k}"
        created = int(time.time())
        if choice:
            delta = {"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": f"call_mock_{k}", "type": "function",
                 "function": {"name": choice[0], "arguments": json.dumps(choice[1])}}]}
            finish = "tool_calls"
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_mock_{k}", "type": "function",
                 "function": {"name": choice[0], "arguments": json.dumps(choice[1])}}]}
        else:
            delta = {"role": "assistant", "content": FINAL_TEXT}
            finish = "stop"
            message = {"role": "assistant", "content": FINAL_TEXT}
        if not body.get("stream"):
            self.send_json({"id": cid, "object": "chat.completion", "created": created, "model": model,
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": raw})
            return
        self.start_sse()
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        self.sse(dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]))
        self.sse(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]))
        self.sse(dict(base, choices=[], usage=raw))
        self.sse("[DONE]")

    # ---- Gemini ---------------------------------------------------------------------------
    def gemini(self, path, body):
        model = path.split("/models/")[-1].split(":")[0]
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        is_tool_result = any("functionResponse" in p for p in last.get("parts") or [])
        user_texts = [c for c in contents if c.get("role") == "user"
                      and any("text" in p for p in c.get("parts") or [])]
        scenario = find(MARKER, user_texts[-1:], None) or "ok"
        workdir = find(WORKDIR, contents, "/tmp")
        tools = []
        for t in body.get("tools") or []:
            for decl in t.get("functionDeclarations") or []:
                tools.append(decl)
        config = body.get("generationConfig") or {}
        k, u = next_usage()
        raw = {"promptTokenCount": u["input"] + u["cache_read"], "cachedContentTokenCount": u["cache_read"],
               "candidatesTokenCount": u["output"], "thoughtsTokenCount": u["reasoning"]}
        raw["totalTokenCount"] = raw["promptTokenCount"] + raw["candidatesTokenCount"] + raw["thoughtsTokenCount"]
        normalized = {"input": u["input"], "output": u["output"], "cache_read": u["cache_read"],
                      "cache_creation": 0, "reasoning": u["reasoning"]}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if config.get("responseMimeType") == "application/json" and schema:
            part = {"text": json.dumps(schema_object(schema))}
            kind = "json"
            choice = None
        else:
            choice = None if is_tool_result or not tools else choose_tool(tools, scenario, workdir)
            if choice:
                part = {"functionCall": {"name": choice[0], "args": choice[1]}}
                kind = "tool"
            else:
                part = {"text": FINAL_TEXT}
                kind = "text"
        log_call({"seq": k, "api": "gemini", "model": model, "scenario": scenario, "kind": kind,
                  "tools_offered": sorted(t.get("name") or "?" for t in tools), "tool": choice[0] if choice else None,
                  "args": choice[1] if choice else None, "usage": raw, "normalized": normalized})
        answer = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                  "usageMetadata": raw, "modelVersion": model, "responseId": f"mock-{k}"}
        if ":streamGenerateContent" in path:
            self.start_sse()
            self.sse(answer)
        else:
            self.send_json(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    STATE["log"] = args.log
    open(args.log, "a").close()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()

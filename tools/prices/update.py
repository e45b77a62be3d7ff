#!/usr/bin/env python3
"""Regenerate host/data/prices.toml, Antenna's built-in model price table.

Source: the `litellm` package on PyPI, which ships litellm's maintained
model_prices_and_context_window JSON inside its wheel. Only models the coding
agents use are kept (Anthropic Claude, OpenAI GPT/o-series/Codex, Google
Gemini); prices are converted from USD per token to USD per million tokens.

Usage:
    python3 tools/prices/update.py                 # pip-downloads the newest litellm wheel
    python3 tools/prices/update.py path/to/litellm-X.Y.Z-....whl
    python3 tools/prices/update.py --out other.toml --date 2026-11-30 WHEEL

Python 3.11+, standard library only (pip is only run as a subprocess when no
wheel is given). The output uses the same format as the operator's override
file (ANTENNA_PRICES).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import json
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "host" / "data" / "prices.toml"

# Provider prefixes stripped from litellm's keys ("gemini/gemini-2.5-pro" -> "gemini-2.5-pro").
# Keys with any other prefix (azure/, bedrock/, openrouter/, ...) are ignored.
STRIP_PREFIXES = ("anthropic/", "openai/", "gemini/", "vertex_ai/")

# litellm_provider values accepted, best first: first-party APIs win a name clash.
PROVIDER_RANK = {
    "anthropic": 0,
    "openai": 0,
    "text-completion-openai": 0,
    "gemini": 0,
    "vertex_ai-anthropic_models": 1,
    "vertex_ai-language-models": 1,
    "vertex_ai": 1,
}

# Model names the coding agents use.
NAME_RE = re.compile(r"^(claude-|gpt-|o1|o3|o4|codex|gemini-)")

# Only text-generation models.
MODES = {"chat", "responses", "completion"}
# Names that mark image/audio/embedding/realtime/speech models even when filed as chat.
SKIP_NAME_RE = re.compile(
    r"(image|audio|embedding|embed|realtime|tts|transcribe|live|speech|whisper|dall-e|moderation)"
)

# (TOML key, litellm key) in output order.
FIELDS = (
    ("input", "input_cost_per_token"),
    ("output", "output_cost_per_token"),
    ("cache_read", "cache_read_input_token_cost"),
    ("cache_write", "cache_creation_input_token_cost"),
    ("reasoning", "output_cost_per_reasoning_token"),
)

# Families: newer point releases priced as their family. Hand-written, check on update.
# (match, litellm model whose prices it takes, regex over model names whose first group
#  is the point release, used only to warn when litellm has a newer member).
# The host matches an exact name first, else the longest `match` ending in `*` that is a
# prefix of the name (after stripping a trailing "[...]" such as Claude Code's "[1m]").
# A `*` is therefore only allowed as the last character.
FAMILIES = (
    ("claude-opus-4*", "claude-opus-4-8", r"^claude-opus-4-(\d+)$"),
    ("gpt-5*", "gpt-5.6", r"^gpt-5(?:\.(\d+))?$"),
    # Only prefix patterns can be matched, so "gemini-3*-flash*" is not expressible; this
    # covers the newest Flash line and its dated/preview variants.
    ("gemini-3.8-flash*", "gemini-3.8-flash", r"^gemini-3(?:\.(\d+))?-flash$"),
)


def download_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "litellm", "--no-deps",
         "--only-binary=:all:", "-q", "-d", str(dest)],
        check=True,
    )
    wheels = sorted(dest.glob("litellm-*.whl"))
    if not wheels:
        sys.exit("pip download produced no litellm wheel")
    return wheels[-1]


def read_wheel(wheel: Path) -> tuple[str, str, dict]:
    """Returns (litellm version, JSON file name, parsed JSON)."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = [n for n in names if n.endswith(".dist-info/METADATA")]
        version = None
        if meta:
            msg = email.parser.Parser().parsestr(zf.read(meta[0]).decode("utf-8"))
            version = msg.get("Version")
        if not version:
            version = wheel.name.split("-")[1]
        candidates = [
            n for n in names
            if re.fullmatch(r"litellm/model_prices_and_context_window(_backup)?\.json", n)
        ]
        if not candidates:
            sys.exit(f"{wheel}: no model_prices_and_context_window*.json inside")
        # Prefer the plain file if a release ever ships it, else the backup copy.
        src = sorted(candidates, key=len)[0]
        data = json.loads(zf.read(src))
    return version, src.rsplit("/", 1)[-1], data


def per_million(per_token) -> float | None:
    if per_token is None or isinstance(per_token, bool) or not isinstance(per_token, (int, float)):
        return None
    v = float(per_token) * 1_000_000
    # Round to 10 significant digits: removes float noise (2.9999999999999996 -> 3.0).
    return float(f"{v:.10g}")


def fmt(v: float) -> str:
    s = format(Decimal(repr(v)).normalize(), "f")
    return s if "." in s else s + ".0"


def strip_prefix(key: str) -> str | None:
    if "/" not in key:
        return key
    for p in STRIP_PREFIXES:
        if key.startswith(p):
            rest = key[len(p):]
            return None if "/" in rest else rest
    return None


def wanted(name: str, entry: dict) -> bool:
    if not NAME_RE.match(name) or name.startswith("ft:") or ":ft" in name:
        return False
    if entry.get("mode") not in MODES:
        return False
    if SKIP_NAME_RE.search(name):
        return False
    return True


def prices_of(entry: dict) -> dict | None:
    out = {}
    for key, lkey in FIELDS:
        v = per_million(entry.get(lkey))
        if v is not None:
            out[key] = v
    if "input" not in out or "output" not in out:
        return None
    # Reasoning only where it is billed apart from ordinary output.
    if out.get("reasoning") == out["output"]:
        del out["reasoning"]
    return out


def collect(data: dict) -> tuple[dict, list[str]]:
    """Returns ({name: prices}, notes about clashes)."""
    chosen: dict[str, tuple[tuple, dict]] = {}  # name -> (rank, prices); lowest rank wins
    notes = []
    aliases = []
    for key, entry in data.items():
        if key == "sample_spec" or not isinstance(entry, dict):
            continue
        name = strip_prefix(key)
        if name is None:
            continue
        if "alias_of" in entry and NAME_RE.match(name):
            aliases.append((key, name, entry["alias_of"]))
            continue
        provider = entry.get("litellm_provider")
        if provider not in PROVIDER_RANK or not wanted(name, entry):
            continue
        prices = prices_of(entry)
        if prices is None:
            continue
        rank = (PROVIDER_RANK[provider], key != name, key)
        prev = chosen.get(name)
        if prev is not None and prev[1] != prices:
            win, lose = (key, prev[0][2]) if rank < prev[0] else (prev[0][2], key)
            notes.append(f"{name}: prices differ, {win} preferred over {lose}")
        if prev is None or rank < prev[0]:
            chosen[name] = (rank, prices)
    # "-latest" style aliases take the prices of their target.
    for key, name, target in aliases:
        if name in chosen:
            continue
        tname = strip_prefix(target) or target
        if tname in chosen:
            chosen[name] = ((9, True, key), chosen[tname][1])
    return {n: p for n, (_, p) in chosen.items()}, notes


def version_key(s: str | None) -> int:
    return int(s) if s else 0


def families(models: dict) -> list[tuple[str, str, dict]]:
    out = []
    for match, source, member_re in FAMILIES:
        assert match.endswith("*") and "*" not in match[:-1], match
        if source not in models:
            sys.exit(f"family {match}: source model {source} not in the table, edit FAMILIES")
        rx = re.compile(member_re)
        members = [(version_key(m.group(1)), n) for n in models if (m := rx.match(n))]
        newest = max(members)[1] if members else source
        if newest != source and max(members)[0] > version_key(rx.match(source).group(1)):
            print(f"warning: family {match} priced from {source}, but litellm has newer {newest}",
                  file=sys.stderr)
        out.append((match, source, models[source]))
    return out


def entry_lines(match: str, prices: dict) -> list[str]:
    lines = ["[[model]]", f'match = "{match}"']
    for key, _ in FIELDS:
        if key in prices:
            lines.append(f"{key} = {fmt(prices[key])}")
    return lines


def render(version: str, src: str, date: str, models: dict) -> str:
    head = [
        "# Built-in model prices for Antenna, USD per million tokens.",
        f"# Source: litellm {version} (PyPI), file {src}, taken {date}.",
        "# Regenerate: python3 tools/prices/update.py",
        "#",
        "# Same format as the operator's override file (ANTENNA_PRICES). Per entry: match (an exact",
        "# model name, or a prefix ending in *), input, output, and where litellm has a figure",
        "# cache_read, cache_write and reasoning. A missing cache_read or cache_write is priced as",
        "# input; a missing reasoning is priced as output (reasoning is only given where it is",
        "# billed apart from output). Matching: an exact match wins, else the longest prefix entry.",
        "# Standard tier only: litellm's long-context (above 200k/272k tokens), batch, flex and",
        "# priority prices are not carried over.",
        "",
    ]
    body = []
    for name in sorted(models):
        body += entry_lines(name, models[name]) + [""]
    fam = ["# Families: newer point releases priced as their family (hand-written, check on update)", ""]
    for match, source, prices in families(models):
        fam += [f"# priced as {source}, the newest of the family in litellm {version}"]
        fam += entry_lines(match, prices) + [""]
    return "\n".join(head + body + fam).rstrip("\n") + "\n"


def check(text: str) -> int:
    doc = tomllib.loads(text)
    entries = doc.get("model")
    assert isinstance(entries, list) and entries, "no [[model]] entries"
    seen = set()
    for e in entries:
        m = e.get("match")
        assert isinstance(m, str) and m, e
        assert m not in seen, f"duplicate match {m}"
        seen.add(m)
        assert "*" not in m[:-1], f"{m}: * only allowed at the end"
        for k in ("input", "output"):
            assert isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool), (m, k)
        for k, v in e.items():
            if k != "match":
                assert k in dict(FIELDS), (m, k)
                assert isinstance(v, (int, float)) and v >= 0, (m, k, v)
    return len(entries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel", nargs="?", type=Path, help="litellm wheel (default: pip download)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="date in the header")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        version, src, data = read_wheel(wheel)

    models, notes = collect(data)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    text = render(version, src, args.date, models)
    count = check(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {count} entries ({len(models)} models + "
          f"{count - len(models)} families) from litellm {version}")


if __name__ == "__main__":
    main()

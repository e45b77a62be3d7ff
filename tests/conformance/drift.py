"""The drift report: what changed in each agent's telemetry between two conformance runs (the
pinned versions and the newest), and which assertions fail on the newer one.

    python3 tests/conformance/drift.py BASE/report.json NEW/report.json
"""

import json
import sys

KINDS = [("event", "log events"), ("span", "spans"), ("span_event", "span events"),
         ("metric", "metrics"), ("scope", "scopes"), ("resource", "resource")]


def per_agent(report):
    """{agent: {kind: {name: set(keys)}}}, the union over the agent's cases."""
    out = {}
    for r in report.get("results", []):
        agent = out.setdefault(r["agent"], {})
        for kind, names in (r.get("inventory") or {}).items():
            bucket = agent.setdefault(kind, {})
            for name, keys in names.items():
                bucket.setdefault(name, set()).update(keys)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        base = json.load(f)
    with open(sys.argv[2]) as f:
        new = json.load(f)
    inv_base, inv_new = per_agent(base), per_agent(new)
    agents = sorted(set(base.get("versions", {})) | set(new.get("versions", {})))
    failing_total = 0
    for agent in agents:
        vb, vn = base["versions"].get(agent), new["versions"].get(agent)
        print(f"\n== {agent}: {vb} -> {vn}" + ("  (same version)" if vb == vn else ""))
        a, b = inv_base.get(agent, {}), inv_new.get(agent, {})
        changed = False
        for kind, label in KINDS:
            names_a, names_b = a.get(kind, {}), b.get(kind, {})
            added = sorted(set(names_b) - set(names_a))
            removed = sorted(set(names_a) - set(names_b))
            if added:
                changed = True
                print(f"  new {label}: " + ", ".join(added))
                for name in added:
                    if names_b[name]:
                        print(f"      {name}: {', '.join(sorted(names_b[name]))}")
            if removed:
                changed = True
                print(f"  removed {label}: " + ", ".join(removed))
            for name in sorted(set(names_a) & set(names_b)):
                plus = sorted(names_b[name] - names_a[name])
                minus = sorted(names_a[name] - names_b[name])
                if plus or minus:
                    changed = True
                    print(f"  {label[:-1] if label.endswith('s') else label} {name}:"
                          + (f" +{', +'.join(plus)}" if plus else "") + (f" -{', -'.join(minus)}" if minus else ""))
        if not changed:
            print("  telemetry: no new or removed names or attribute keys")
        results = [r for r in new.get("results", []) if r["agent"] == agent]
        failing = [r for r in results if r["status"] == "fail"]
        skipped = [r for r in results if r["status"] == "skip"]
        failing_total += len(failing)
        print(f"  assertions: {len(results) - len(failing) - len(skipped)} cases pass, {len(failing)} fail"
              + (f", {len(skipped)} skipped" if skipped else ""))
        for r in failing:
            print(f"    FAIL {r['case']}")
            for msg in r["failures"]:
                print(f"      - {msg.splitlines()[0]}")
        for r in skipped:
            print(f"    SKIP {r['case']}: {r.get('reason')}")
    return 1 if failing_total else 0


if __name__ == "__main__":
    sys.exit(main())

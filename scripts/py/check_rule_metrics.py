"""Checks that every metric the alert and recording rules and the Grafana
dashboards read is exposed by a running mesh, so that no alert silently
watches, and no panel silently draws, a series that does not exist (a
renamed metric, a typo). A dashboard may also read the rules' recorded
series, which must then be recorded by a rule.

usage: check_rule_metrics.py METRICS_URL FILE [FILE ...] [--skip NAME,NAME]
FILE: a rules file (.yml) or a dashboard (.json). --skip names metrics the
mesh being checked cannot expose (e.g. Redis's pool gauges when it runs
without Redis). Exits non-zero naming what is missing.
"""

import json
import re
import sys
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

# PromQL words that look like metric names.
KEYWORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "rate", "irate",
    "increase", "histogram_quantile", "offset", "bool", "abs", "clamp_min",
    "clamp_max", "absent", "vector", "scalar", "time", "delta", "deriv",
    "topk", "bottomk", "quantile", "stddev", "label_replace",
}


def metric_names(expr: str) -> set[str]:
    """The metrics an expression reads (label matchers, grouping clauses,
    durations, strings and numbers removed), recorded series (with ':')
    included."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set()
    for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if token in KEYWORDS:
            continue
        names.add(token)
    return names


def expressions(path: Path) -> tuple[list[str], set[str]]:
    """The PromQL of a rules file or a dashboard, and the series it records."""
    if path.suffix == ".json":
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        panels = dashboard.get("panels", [])
        panels = panels + [p for row in panels for p in row.get("panels", [])]
        # PromQL only: a logs panel's LogQL names labels, not metrics.
        exprs = [t["expr"] for p in panels for t in p.get("targets", [])
                 if t.get("expr") and t.get("datasource", {}).get("type", "prometheus") == "prometheus"]
        return exprs, set()
    rules = [r for g in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"] for r in g["rules"]]
    return [r["expr"] for r in rules], {r["record"] for r in rules if "record" in r}


def main() -> int:
    args = sys.argv[1:]
    skip = set()
    if "--skip" in args:
        at = args.index("--skip")
        skip = set(args[at + 1].split(","))
        args = args[:at] + args[at + 2:]
    url, files = args[0], [Path(a) for a in args[1:]]
    wanted, recorded = set(), set()
    for path in files:
        exprs, records = expressions(path)
        recorded |= records
        for expr in exprs:
            wanted |= metric_names(expr)
    unrecorded = sorted(n for n in wanted if ":" in n and n not in recorded)
    wanted = {n for n in wanted if ":" not in n}
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode("utf-8")
    exposed = set()
    for family in text_string_to_metric_families(text):
        exposed.add(family.name)
        for sample in family.samples:
            exposed.add(sample.name)
    missing = sorted(
        name for name in wanted - skip
        if name not in exposed and name.removesuffix("_total") not in exposed
    )
    if unrecorded:
        print(f"recorded series no rule records: {unrecorded}", file=sys.stderr)
    if missing:
        print(f"{url}: the rules and dashboards read metrics it does not expose: {missing}", file=sys.stderr)
    if missing or unrecorded:
        return 1
    dashboards = sum(1 for f in files if f.suffix == ".json")
    print(f"all {len(wanted - skip)} metrics the rules and {dashboards} dashboards read are exposed"
          + (f" ({len(skip & wanted)} skipped: {sorted(skip & wanted)})" if skip & wanted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

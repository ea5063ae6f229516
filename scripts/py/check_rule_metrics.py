"""Checks that every metric the alert and recording rules read is exposed
by a running mesh, so that no alert silently watches a series that does
not exist (a renamed metric, a typo).

usage: check_rule_metrics.py METRICS_URL RULES_FILE [--skip NAME,NAME]
--skip names metrics the mesh being checked cannot expose (e.g. Redis's
pool gauges when it runs without Redis). Exits non-zero naming what is
missing.
"""

import re
import sys
import urllib.request

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
    """The metrics an expression reads: label matchers, grouping clauses,
    durations, strings and numbers removed; recorded series (with ':')
    are the rules' own."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    names = set()
    for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if token in KEYWORDS or ":" in token:
            continue
        names.add(token)
    return names


def main() -> int:
    url, rules_file = sys.argv[1], sys.argv[2]
    skip = set()
    if len(sys.argv) > 4 and sys.argv[3] == "--skip":
        skip = set(sys.argv[4].split(","))
    with open(rules_file, encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    wanted = set()
    for group in groups:
        for rule in group["rules"]:
            wanted |= metric_names(rule["expr"])
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
    if missing:
        print(f"{url}: the rules read metrics it does not expose: {missing}", file=sys.stderr)
        return 1
    print(f"all {len(wanted - skip)} metrics the rules read are exposed"
          + (f" ({len(skip & wanted)} skipped: {sorted(skip & wanted)})" if skip & wanted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

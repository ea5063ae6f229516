"""Parses a /metrics page with the Prometheus project's own Python parser
and checks that the series we promise are there.

usage: check_metrics.py URL METRIC [METRIC ...]
Exits non-zero, saying why, if the page does not parse or a metric is
missing.
"""

import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    url, wanted = sys.argv[1], sys.argv[2:]
    with urllib.request.urlopen(url, timeout=10) as reply:
        content_type = reply.headers.get("content-type", "")
        text = reply.read().decode("utf-8")
    if not content_type.startswith("text/plain"):
        print(f"{url}: content-type {content_type!r}", file=sys.stderr)
        return 1
    try:
        families = {family.name: family for family in text_string_to_metric_families(text)}
    except ValueError as error:
        print(f"{url}: not the Prometheus text format: {error}", file=sys.stderr)
        return 1
    # The parser names counter families without their `_total` suffix.
    missing = [
        name
        for name in wanted
        if name not in families and name.removesuffix("_total") not in families
    ]
    if missing:
        print(f"{url}: missing {missing}; has {sorted(families)}", file=sys.stderr)
        return 1
    samples = sum(len(family.samples) for family in families.values())
    print(f"{len(families)} families, {samples} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())

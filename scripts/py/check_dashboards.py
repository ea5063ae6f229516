"""Checks the Grafana dashboards and provisioning in deploy/monitoring/grafana
without a Grafana: each dashboard parses, has a uid of its own and panel
ids unique within it, lays its panels out within Grafana's 24 columns, and
every panel and query reads a data source the provisioning defines, with
a PromQL expression where it reads Prometheus. (That the metrics exist is
check_rule_metrics.py's part, against a running mesh.)

usage: check_dashboards.py GRAFANA_DIR
"""

import json
import sys
from pathlib import Path

import yaml


def main() -> int:
    grafana = Path(sys.argv[1])
    sources = {}
    for path in sorted((grafana / "provisioning" / "datasources").glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            sources[source["uid"]] = source["type"]
    errors, uids, panels_seen = [], set(), 0
    dashboards = sorted((grafana / "dashboards").glob("*.json"))
    if not dashboards:
        errors.append(f"{grafana}/dashboards holds no dashboard")
    for path in dashboards:
        try:
            dashboard = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            errors.append(f"{path.name}: not JSON: {error}")
            continue
        uid = dashboard.get("uid")
        if not uid or uid in uids:
            errors.append(f"{path.name}: uid {uid!r} missing or taken by another dashboard")
        uids.add(uid)
        ids = set()
        for panel in dashboard.get("panels", []):
            panels_seen += 1
            where = f"{path.name} panel {panel.get('id')} {panel.get('title')!r}"
            if panel.get("id") in ids:
                errors.append(f"{where}: id used twice")
            ids.add(panel.get("id"))
            grid = panel.get("gridPos", {})
            if grid.get("x", 0) + grid.get("w", 0) > 24 or grid.get("w", 0) <= 0 or grid.get("h", 0) <= 0:
                errors.append(f"{where}: gridPos {grid} outside Grafana's 24 columns")
            if panel.get("type") == "row":
                continue
            for query in [panel, *panel.get("targets", [])]:
                source = query.get("datasource", {}).get("uid")
                if source not in sources:
                    errors.append(f"{where}: data source {source!r} is not provisioned ({sorted(sources)})")
            if not panel.get("targets"):
                errors.append(f"{where}: no query")
            for target in panel.get("targets", []):
                uid_of = target.get("datasource", {}).get("uid")
                if sources.get(uid_of) == "prometheus" and not target.get("expr", "").strip():
                    errors.append(f"{where}: query {target.get('refId')} has no PromQL")
    for error in errors:
        print(f"check-dashboards: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check-dashboards: {len(dashboards)} dashboards, {panels_seen} panels, "
          f"data sources {sorted(sources)} provisioned")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Prints the addresses a process reported in its JSON log's `oms::listen`
lines, one per SERVICE:KIND asked, separated by spaces; exits 1 if any is
not there (yet). Harnesses start services on port 0 and read the port each
got, instead of picking a port that was free a moment ago.

usage: listen_addrs.py LOG SERVICE:KIND…   e.g. user-svc:grpc gateway:http
"""

import json
import sys


def reported(log: str) -> dict:
    """Every `SERVICE:KIND` the log at `log` reported, with its address."""
    found = {}
    with open(log, errors="replace") as lines:
        for line in lines:
            if "oms::listen" not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("target") == "oms::listen":
                found.setdefault(f"{event.get('service')}:{event.get('kind')}", event.get("addr"))
    return found


def main() -> int:
    found = reported(sys.argv[1])
    wanted = sys.argv[2:]
    if not all(found.get(w) for w in wanted):
        return 1
    print(" ".join(found[w] for w in wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main())

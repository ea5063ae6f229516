"""Checks compose.yaml and the Dockerfile as far as possible without a
container engine:

- compose.yaml parses and validates against the compose-spec JSON schema;
- each of our services runs a binary the Dockerfile builds, and its health
  check is that binary's `healthcheck` subcommand;
- every variable compose gives a service (its `environment` and the env
  files scripts/compose-secrets makes) is one the binary reads
  (`<binary> env-vars`), and the binary accepts the values (its
  `healthcheck` loads the configuration: exit 2 would mean a bad value);
- the runtime image runs as a non-root user.

usage: check_compose.py SCHEMA BIN_DIR
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import json
import yaml

ROOT = Path(__file__).resolve().parents[2]
OURS = ["user-svc", "product-svc", "order-svc", "gateway"]


def env_file(path: Path) -> dict:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if line.strip())
    return {key: value for key, _, value in pairs}


def main() -> int:
    schema_path, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    schema = json.loads(schema_path.read_text())
    errors = [
        f"compose.yaml {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft201909Validator(schema).iter_errors(compose)
    ]

    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)
    runtime = stages[-1]
    if not re.search(r"^USER (?!root|0\b)\S+", runtime, flags=re.M):
        errors.append("Dockerfile: the runtime stage must switch to a non-root USER")

    with tempfile.TemporaryDirectory() as secrets_dir:
        subprocess.run([sys.executable, ROOT / "scripts" / "compose-secrets", "--dir", secrets_dir],
                       check=True, stdout=subprocess.DEVNULL)
        for name in OURS:
            spec = compose["services"].get(name)
            if spec is None:
                errors.append(f"compose.yaml: no service {name}")
                continue
            binary = Path(spec["entrypoint"][0]).name
            if binary != name or f"target/release/{binary}" not in dockerfile:
                errors.append(f"{name}: entrypoint {spec['entrypoint']} is not a binary the Dockerfile builds")
            # Only the gateway faces clients; a gRPC port is published on
            # the host's loopback at most.
            for port in spec.get("ports", []):
                if name != "gateway" and not str(port).startswith("127.0.0.1:"):
                    errors.append(f"{name}: port {port} is published beyond 127.0.0.1")
            test = spec.get("healthcheck", {}).get("test", [])
            if test != ["CMD", f"/usr/local/bin/{binary}", "healthcheck"]:
                errors.append(f"{name}: healthcheck {test} is not `{binary} healthcheck`")

            env = {}
            for f in spec.get("env_file", []):
                env.update(env_file(Path(secrets_dir) / Path(f).name))
            env.update({k: str(v) for k, v in spec.get("environment", {}).items()})
            known = subprocess.run([bin_dir / binary, "env-vars"], check=True,
                                   capture_output=True, text=True).stdout.split()
            unknown = sorted(set(env) - set(known))
            if unknown:
                errors.append(f"{name}: {unknown} are not read by {binary} (it reads {known})")
            # Loads the configuration with compose's values, then probes a
            # server that isn't running here: exactly 1 (unhealthy) is
            # expected. 2 means a value was refused; 0, that something else
            # answered at compose's address; anything else, a crash.
            probe = subprocess.run([bin_dir / binary, "healthcheck"], env={"PATH": "/usr/bin:/bin", **env},
                                   capture_output=True, text=True, timeout=30)
            if probe.returncode == 2:
                errors.append(f"{name}: {binary} refuses compose's configuration: {probe.stderr.strip()}")
            elif probe.returncode == 0:
                errors.append(f"{name}: something already serves at compose's address "
                              f"(stop it and run again): {probe.stdout.strip()}")
            elif probe.returncode != 1:
                errors.append(f"{name}: `{binary} healthcheck` exited {probe.returncode}, "
                              f"not 1 (unhealthy): {probe.stderr.strip()}")

    for error in errors:
        print(f"check-compose: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check-compose: compose.yaml valid against the compose-spec schema; "
          f"{len(OURS)} services: binaries, health checks and every variable known")
    return 0


if __name__ == "__main__":
    sys.exit(main())

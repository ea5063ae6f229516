"""Checks compose.yaml and the Dockerfile as far as possible without a
container engine:

- compose.yaml parses and validates against the compose-spec JSON schema;
- each of our services runs a binary the Dockerfile builds, and its health
  check is that binary's `healthcheck` subcommand;
- every variable compose gives a service (its `environment` and the env
  files scripts/compose-secrets makes) is one the binary reads
  (`<binary> env-vars`), and the binary accepts the values (its
  `healthcheck` loads the configuration: exit 2 would mean a bad value);
- compose.tls.yaml, the TLS override, validates too, mounts the files
  scripts/compose-secrets makes, and every variable it adds is read and
  accepted by the binary (with those files);
- the runtime image runs as a non-root user;
- the `observability` profile: its services are only in that profile,
  every file it mounts exists, Prometheus scrapes each service where
  compose makes it serve /metrics, and the services' OTLP endpoint (with
  OMS_OTLP_ENDPOINT as docs/deploy.md sets it) is the collector's
  receiver.

usage: check_compose.py SCHEMA BIN_DIR
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
from binary_env import check_binary_env
import json
import yaml

ROOT = Path(__file__).resolve().parents[2]
OURS = ["user-svc", "product-svc", "order-svc", "gateway"]
OBSERVABILITY = ["prometheus", "otel-collector", "tempo", "loki", "grafana"]
# The variables compose interpolates, as docs/deploy.md has them set for
# the observability profile.
INTERPOLATED = {"OMS_OTLP_ENDPOINT": "http://otel-collector:4317"}


def interpolate(value: str) -> str:
    """compose's ${VAR:-default}, with INTERPOLATED as the environment."""
    return re.sub(r"\$\{([A-Z_]+)(?::-([^}]*))?\}",
                  lambda m: INTERPOLATED.get(m.group(1), m.group(2) or ""), value)


def check_observability(compose: dict) -> list[str]:
    errors = []
    services = compose["services"]
    for name in OBSERVABILITY:
        spec = services.get(name)
        if spec is None:
            errors.append(f"compose.yaml: no service {name} (observability profile)")
            continue
        if spec.get("profiles") != ["observability"]:
            errors.append(f"{name}: profiles {spec.get('profiles')}, want [observability] only")
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not (ROOT / source).exists():
                errors.append(f"{name}: mounts {source}, which does not exist")
    for name in OURS:
        needs = services[name].get("depends_on", {})
        if set(needs) & set(OBSERVABILITY):
            errors.append(f"{name}: depends on the observability profile, which is opt-in")
    prometheus = yaml.safe_load((ROOT / "deploy" / "monitoring" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    for name in OURS:
        env = services[name]["environment"]
        metrics = next((v for k, v in env.items() if k.endswith("_METRICS_ADDR")), env.get("GATEWAY_ADDR"))
        wanted = f"{name}:{str(metrics).rsplit(':', 1)[1]}"
        if wanted not in targets:
            errors.append(f"prometheus.yml does not scrape {wanted}, where {name} serves /metrics")
        endpoint = interpolate(str(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")))
        collector = yaml.safe_load((ROOT / "deploy" / "monitoring" / "otel-collector.yaml").read_text())
        port = collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1]
        if endpoint != f"http://otel-collector:{port}":
            errors.append(f"{name}: OTLP endpoint {endpoint!r} is not the collector's receiver (port {port})")
    return errors


def check_tls_overlay(compose: dict, schema: dict, bin_dir: Path, secrets_dir: Path) -> list[str]:
    overlay = yaml.safe_load((ROOT / "compose.tls.yaml").read_text())
    errors = [
        f"compose.tls.yaml {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft201909Validator(schema).iter_errors(overlay)
    ]
    for name in OURS:
        spec = overlay["services"].get(name)
        if spec is None:
            errors.append(f"compose.tls.yaml: {name} gets no TLS")
            continue
        if spec.get("volumes") != ["./deploy/secrets/tls:/run/secrets/tls:ro"]:
            errors.append(f"compose.tls.yaml {name}: mounts {spec.get('volumes')}, not compose-secrets' tls/")
        base = compose["services"][name]
        env = {}
        for f in base.get("env_file", []):
            env.update(env_file(secrets_dir / Path(f).name))
        env.update({k: interpolate(str(v)) for k, v in base.get("environment", {}).items()})
        for key, value in spec.get("environment", {}).items():
            value = str(value)
            if value.startswith("/run/secrets/tls/"):
                local = secrets_dir / "tls" / value.removeprefix("/run/secrets/tls/")
                if not local.exists():
                    errors.append(f"compose.tls.yaml {name}: {key} names {value}, which compose-secrets does not make")
                value = str(local)
            env[key] = value
        if "OMS_TLS_CERT" not in env or (name != "gateway" and "OMS_TLS_CLIENT_CA" not in env):
            errors.append(f"compose.tls.yaml {name}: not mutual TLS (OMS_TLS_CERT and OMS_TLS_CLIENT_CA)")
        errors += check_binary_env(bin_dir, Path(base["entrypoint"][0]).name, env, f"{name} (compose.tls.yaml)")
    return errors


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
            if binary != name or f"target/production/{binary}" not in dockerfile:
                errors.append(f"{name}: entrypoint {spec['entrypoint']} is not a binary the Dockerfile builds")
            # Only the gateway faces clients. A backend publishes no host
            # port and has no fixed container name, so it scales
            # (`docker compose up --scale product-svc=2`).
            if name != "gateway" and spec.get("ports"):
                errors.append(f"{name}: publishes {spec['ports']}: a host port cannot be shared by replicas")
            if "container_name" in spec:
                errors.append(f"{name}: a fixed container_name cannot be shared by replicas")
            test = spec.get("healthcheck", {}).get("test", [])
            if test != ["CMD", f"/usr/local/bin/{binary}", "healthcheck"]:
                errors.append(f"{name}: healthcheck {test} is not `{binary} healthcheck`")

            env = {}
            for f in spec.get("env_file", []):
                env.update(env_file(Path(secrets_dir) / Path(f).name))
            env.update({k: interpolate(str(v)) for k, v in spec.get("environment", {}).items()})
            errors += check_binary_env(bin_dir, binary, env, f"{name} (compose.yaml)")

        errors += check_tls_overlay(compose, schema, bin_dir, Path(secrets_dir))

    errors += check_observability(compose)
    for error in errors:
        print(f"check-compose: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check-compose: compose.yaml valid against the compose-spec schema; "
          f"{len(OURS)} services: binaries, health checks and every variable known; "
          f"compose.tls.yaml valid, its files made and its variables accepted; "
          f"observability profile: {len(OBSERVABILITY)} services, mounts, scrape targets, OTLP endpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs the topology of compose.yaml as processes on 127.0.0.1, since no
container engine runs here: the same four services with the environment
compose gives them (its `environment` plus the env files that
scripts/compose-secrets makes), MySQL schemas and users made by the same
init script, Redis, and the same `healthcheck` commands. Then a customer's
whole flow through the gateway, and checks that each service's database
user cannot touch another's schema. Cleans up after itself.

usage: compose_local.py BIN_DIR   (holding user-svc, product-svc, order-svc, gateway)

Needs MariaDB/MySQL reachable as root by `mysql -uroot` (local socket),
Redis at $OMS_TEST_REDIS_URL (default redis://127.0.0.1:6379), and stands
the test broker (scripts/test-broker, tansu; or $OMS_TEST_KAFKA_BROKERS) in
for compose's Kafka and the test S3 server (scripts/test-s3, moto; or
$OMS_TEST_S3_ENDPOINT) for its MinIO, making the bucket as minio-init does.
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from listen_addrs import reported
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
OURS = ["user-svc", "product-svc", "order-svc", "gateway"]


def fail(message: str) -> None:
    raise SystemExit(f"compose-local: FAILED: {message}")


def env_file(path: Path) -> dict:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def http(method: str, url: str, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def until(deadline_s: float, what: str, probe) -> None:
    deadline = time.monotonic() + deadline_s
    while not probe():
        if time.monotonic() > deadline:
            fail(f"{what} within {deadline_s} s")
        time.sleep(0.2)


def main() -> int:
    bin_dir = Path(sys.argv[1]).resolve()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    work = Path(tempfile.mkdtemp(prefix="oms-compose-local-"))
    prefix = f"oms_topo_{secrets.token_hex(3)}_"
    redis_url = os.environ.get("OMS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    kafka = os.environ.get("OMS_TEST_KAFKA_BROKERS") or subprocess.run(
        [ROOT / "scripts" / "test-broker"], check=True, capture_output=True, text=True
    ).stdout.strip()
    s3 = os.environ.get("OMS_TEST_S3_ENDPOINT") or subprocess.run(
        [ROOT / "scripts" / "test-s3"], check=True, capture_output=True, text=True
    ).stdout.strip()
    processes = {}
    logs = {}
    try:
        # minio-init's `mc mb --ignore-existing`: the local server takes
        # unsigned requests, and answers 409 when the bucket exists.
        bucket = re.match(r"s3://([^/]+)", compose["services"]["product-svc"]["environment"]["OMS_BLOB_URL"]).group(1)
        try:
            urllib.request.urlopen(urllib.request.Request(f"{s3}/{bucket}", method="PUT"), timeout=10)
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise
        secrets_dir = work / "secrets"
        subprocess.run(
            [sys.executable, ROOT / "scripts" / "compose-secrets", "--dir", secrets_dir,
             "--db-host", "127.0.0.1:3306", "--prefix", prefix],
            check=True, stdout=subprocess.DEVNULL,
        )
        # The mysql container's init step, against the local server.
        mysql_env = {**os.environ, **env_file(secrets_dir / "mysql.env")}
        subprocess.run(
            ["bash", "-c", f"set -eo pipefail; . {ROOT}/deploy/mysql/init/10-oms-schemas.sh"],
            check=True, env=mysql_env, stdout=subprocess.DEVNULL,
        )

        # Each container has its own network namespace; here every
        # listener binds port 0, says in its log which port it got, and
        # every name becomes that address on 127.0.0.1.
        addrs = {}
        metrics_addrs = {}
        listen_var = {"user-svc": "USER_SVC_ADDR", "product-svc": "PRODUCT_SVC_ADDR",
                      "order-svc": "ORDER_SVC_ADDR", "gateway": "GATEWAY_ADDR"}

        def localize(service: str, key: str, value: str) -> str:
            value = str(value)
            if key == listen_var[service] or key.endswith("_METRICS_ADDR"):
                return "127.0.0.1:0"
            if key in listen_var.values():
                # Started in dependency order: the peer is up already.
                peer = next(n for n, v in listen_var.items() if v == key)
                return addrs[peer]
            if key == "RUST_LOG":
                return f"{value},oms::listen=info"
            if key == "REDIS_URL":
                return redis_url
            if key == "OMS_KAFKA_BROKERS":
                return kafka
            if key == "AWS_ENDPOINT_URL":
                return s3
            if key == "OMS_REDIS_KEY_PREFIX":
                return f"{prefix}:"
            if key == "OMS_TRUSTED_PROXIES":
                return "127.0.0.1"
            if key == "OTEL_EXPORTER_OTLP_ENDPOINT":
                # ${OMS_OTLP_ENDPOINT:-}: no collector here, as without
                # the observability profile.
                return ""
            return value

        for name in OURS:
            spec = compose["services"][name]
            binary = Path(spec["entrypoint"][0]).name
            env = {"PATH": os.environ.get("PATH", ""), "OMS_DATA_DIR": str(work / name)}
            for f in spec.get("env_file", []):
                env.update(env_file(secrets_dir / Path(f).name))
            env.update({k: localize(name, k, v) for k, v in spec.get("environment", {}).items()})
            env["LOG_FORMAT"] = "json"
            env.setdefault("RUST_LOG", "info,oms::listen=info")
            log = open(work / f"{name}.log", "w")
            logs[name] = work / f"{name}.log"
            processes[name] = subprocess.Popen([bin_dir / binary], env=env, stdout=log, stderr=log)

            def listening(name=name) -> bool:
                if processes[name].poll() is not None:
                    fail(f"{name} exited: {logs[name].read_text()[-3000:]}")
                addrs[name] = reported(logs[name]).get(f"{name}:{'http' if name == 'gateway' else 'grpc'}")
                return addrs[name] is not None

            until(60, f"{name} reporting its address", listening)
            if any(k.endswith("_METRICS_ADDR") for k in env):
                until(10, f"{name} reporting its /metrics address",
                      lambda name=name: reported(logs[name]).get(f"{name}:metrics") is not None)
                metrics_addrs[name] = reported(logs[name])[f"{name}:metrics"]
            # The health command reads the listen address from the same
            # variable: the one the service got.
            env = {**env, listen_var[name]: addrs[name]}
            # compose's depends_on: service_healthy, with its health command.
            test = spec["healthcheck"]["test"]
            check = [bin_dir / Path(test[1]).name, *test[2:]]

            def healthy(name=name, check=check, env=env) -> bool:
                if processes[name].poll() is not None:
                    fail(f"{name} exited: {logs[name].read_text()[-3000:]}")
                return subprocess.run(check, env=env, capture_output=True).returncode == 0

            until(60, f"{name} healthy by `{' '.join(map(str, test[1:]))}`", healthy)
            print(f"compose-local: {name} healthy on {addrs[name]}")

        gw = f"http://{addrs['gateway']}"
        user_env = env_file(secrets_dir / "user-svc.env")
        status, body = http("POST", f"{gw}/v1/auth/login", {
            "email": user_env["OMS_BOOTSTRAP_ADMIN_EMAIL"],
            "password": user_env["OMS_BOOTSTRAP_ADMIN_PASSWORD"]})
        if status != 200:
            fail(f"admin login: {status} {body}")
        admin = body["accessToken"]
        status, body = http("POST", f"{gw}/v1/products", {
            "sku": "TOPO-1", "name": "Topology mug",
            "price": {"currencyCode": "EUR", "amountMinor": "900"}, "stockOnHand": "3"}, admin)
        if status != 200:
            fail(f"create product: {status} {body}")
        product = body["product"]["id"]
        http("POST", f"{gw}/v1/auth/register", {
            "email": "topo@example.com", "password": "topology password", "displayName": "Topo"})
        status, body = http("POST", f"{gw}/v1/auth/login", {
            "email": "topo@example.com", "password": "topology password"})
        if status != 200:
            fail(f"customer login: {status} {body}")
        customer = body["accessToken"]
        status, body = http("POST", f"{gw}/v1/orders", {
            "lines": [{"productId": product, "quantity": 2}], "requestId": "topo-1"}, customer)
        if status != 200 or body["order"]["status"] != "ORDER_STATUS_CONFIRMED":
            fail(f"create order: {status} {body}")
        status, body = http("GET", f"{gw}/v1/orders", token=customer)
        if status != 200 or len(body.get("orders", [])) != 1:
            fail(f"list orders: {status} {body}")
        status, body = http("GET", f"{gw}/v1/products/{product}")
        if body["product"]["stockAvailable"] != "1":
            fail(f"stock after the order: {body}")
        print("compose-local: admin product, customer order CONFIRMED, stock 3 -> 1, through the gateway")

        # An image through the gateway into the S3 store, and back.
        png = bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
            "0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082")
        request = urllib.request.Request(
            f"{gw}/v1/products/{product}/images?altText=dot", data=png, method="PUT",
            headers={"Content-Type": "image/png", "Authorization": f"Bearer {admin}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                image = json.loads(r.read())["image"]
        except urllib.error.HTTPError as e:
            fail(f"image upload: {e.code} {e.read()[:500]}")
        with urllib.request.urlopen(f"{gw}{image['url']}", timeout=30) as r:
            if r.read() != png or r.headers["ETag"] != f'"{image["sha256"]}"':
                fail("the image came back different")
        print(f"compose-local: an image PUT through the gateway into S3 at {s3} and served back byte for byte")

        for name in ["user-svc", "product-svc", "order-svc"]:
            with urllib.request.urlopen(f"http://{metrics_addrs[name]}/metrics", timeout=10) as r:
                families = {f.name for f in text_string_to_metric_families(r.read().decode())}
            wanted = {"grpc_server_handled", "db_pool_connections"}
            if name in ("user-svc", "product-svc"):  # the two with REDIS_URL
                wanted.add("redis_pool_connections")
            if not wanted <= families:
                fail(f"{name} /metrics lacks {sorted(wanted - families)}: {sorted(families)}")
        print("compose-local: every service's /metrics parses and has RPC, database and Redis pool series")

        # The order's events and the stock's reached Kafka: both relays'
        # backlogs drain to zero.
        def drained(name: str) -> bool:
            with urllib.request.urlopen(f"http://{metrics_addrs[name]}/metrics", timeout=10) as r:
                for family in text_string_to_metric_families(r.read().decode()):
                    if family.name == "outbox_backlog":
                        return bool(family.samples) and all(s.value == 0 for s in family.samples)
            return False

        for name in ["order-svc", "product-svc"]:
            until(60, f"{name}'s outbox to drain into Kafka", lambda name=name: drained(name))
        print(f"compose-local: order-svc's and product-svc's events published to Kafka at {kafka}")

        # Least privilege: each service's user sees only its own schema.
        products_url = env_file(secrets_dir / "product-svc.env")["DATABASE_URL"]
        user, password = re.match(r"mysql://([^:]+):([^@]+)@", products_url).groups()
        denied = subprocess.run(
            ["mysql", "-h127.0.0.1", f"-u{user}", f"-p{password}", "-e",
             f"SELECT COUNT(*) FROM `{prefix}users`.`users`"], capture_output=True, text=True)
        if denied.returncode == 0 or "denied" not in denied.stderr:
            fail(f"product-svc's DB user read the users schema: {denied.stdout}{denied.stderr}")
        print("compose-local: product-svc's database user is denied the users schema")

        for name in reversed(OURS):
            processes[name].send_signal(signal.SIGTERM)
            code = processes[name].wait(timeout=30)
            if code != 0:
                fail(f"{name} exited with {code} after SIGTERM")
        print("compose-local: SIGTERM -> every service exited 0")
        return 0
    except SystemExit:
        for name, log in logs.items():
            print(f"--- {name} log (tail) ---\n{log.read_text()[-2000:]}", file=sys.stderr)
        raise
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        drop = "".join(
            f"DROP DATABASE IF EXISTS `{prefix}{schema}`; DROP USER IF EXISTS '{prefix}{user}'@'%';"
            for schema, user in [("users", "user_svc"), ("products", "product_svc"), ("orders", "order_svc")])
        subprocess.run(["mysql", "-uroot", "-e", drop], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Runs the topology of compose.yaml as processes on 127.0.0.1, since no
container engine runs here: the same four services with the environment
compose gives them (its `environment` plus the env files that
scripts/compose-secrets makes), MySQL schemas and users made by the same
init script, Redis, and the same `healthcheck` commands. Then a customer's
whole flow through the gateway, and checks that each service's database
user cannot touch another's schema. Cleans up after itself.

With --tls, compose.tls.yaml on top: mutual TLS on every link and HTTPS at
the gateway, with the certificates scripts/compose-secrets makes. Then also
what a stock client sees: grpcurl served with a client certificate (and
refused without one, in plaintext, and for a name the certificate is not
for), `openssl s_client` refused TLS 1.1 and given ALPN h2, and the
certificates renewed in place (`compose-secrets --renew-tls`) reaching new
connections without a restart.

usage: compose_local.py BIN_DIR [--tls]   (BIN_DIR holding user-svc, product-svc, order-svc, gateway)

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
import ssl
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


# The gateway's HTTPS client (--tls): trusts the development CA only.
HTTPS = None


def http(method: str, url: str, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15, context=HTTPS) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def until(deadline_s: float, what: str, probe) -> None:
    deadline = time.monotonic() + deadline_s
    while not probe():
        if time.monotonic() > deadline:
            fail(f"{what} within {deadline_s} s")
        time.sleep(0.2)


def with_tls(compose: dict, tls_dir: Path) -> dict:
    """compose.tls.yaml over compose.yaml: its variables added, its
    mounted /run/secrets/tls files read where compose-secrets wrote them,
    and renewals picked up within a second."""
    overlay = yaml.safe_load((ROOT / "compose.tls.yaml").read_text())
    for name, spec in overlay["services"].items():
        env = compose["services"][name].setdefault("environment", {})
        for key, value in spec["environment"].items():
            value = str(value)
            if value.startswith("/run/secrets/tls/"):
                value = str(tls_dir / value.removeprefix("/run/secrets/tls/"))
            env[key] = value
        env["OMS_TLS_RELOAD_INTERVAL"] = "1s"
    return compose


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=30, **kwargs)


def served_serial(addr: str, tls_dir: Path) -> str:
    """The serial of the certificate a new connection to `addr` is shown."""
    shown = run("openssl", "s_client", "-connect", addr, "-CAfile", tls_dir / "ca.crt",
                "-cert", tls_dir / "gateway.crt", "-key", tls_dir / "gateway.key", "-alpn", "h2",
                input="")
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", shown.stdout, re.S)
    if not pem:
        fail(f"openssl s_client to {addr} showed no certificate: {shown.stdout[-1500:]}{shown.stderr[-1500:]}")
    serial = run("openssl", "x509", "-noout", "-serial", input=pem.group(0))
    return serial.stdout.strip().removeprefix("serial=")


def stock_clients_over_tls(addrs: dict, tls_dir: Path, secrets_dir: Path, metrics_addrs: dict) -> None:
    """What grpcurl and openssl see of the mesh with mutual TLS on."""
    grpcurl = run(ROOT / "scripts" / "ensure-tools", "grpcurl").stdout.strip()
    product = addrs["product-svc"]
    ca, cert, key = tls_dir / "ca.crt", tls_dir / "gateway.crt", tls_dir / "gateway.key"
    health = "grpc.health.v1.Health/Check"
    served = run(grpcurl, "-cacert", ca, "-cert", cert, "-key", key, product, health)
    if '"SERVING"' not in served.stdout:
        fail(f"grpcurl with a client certificate: {served.stdout}{served.stderr}")
    # The name verified is the name dialled: product-svc's certificate is
    # good for product-svc, not for order-svc.
    served = run(grpcurl, "-cacert", ca, "-cert", cert, "-key", key, "-servername", "product-svc", product, health)
    if '"SERVING"' not in served.stdout:
        fail(f"grpcurl naming product-svc: {served.stdout}{served.stderr}")
    wrong = run(grpcurl, "-cacert", ca, "-cert", cert, "-key", key, "-servername", "order-svc", product, health)
    if wrong.returncode == 0 or "order-svc" not in wrong.stderr:
        fail(f"product-svc's certificate passed for order-svc: {wrong.stdout}{wrong.stderr}")
    print("compose-local: grpcurl -cacert -cert -key: SERVING; the certificate holds for product-svc, not order-svc")
    for what, args in [("without a client certificate", ["-cacert", ca]), ("in plaintext", ["-plaintext"])]:
        refused = run(grpcurl, *args, product, health)
        if refused.returncode == 0:
            fail(f"grpcurl {what} was served: {refused.stdout}")
        print(f"compose-local: grpcurl {what}: refused ({refused.stderr.strip().splitlines()[-1][:120]})")
    # TLS 1.1 offered by a client allowed to (OpenSSL's own floor lowered):
    # the server ends the handshake with an alert, no cipher agreed.
    old = run("openssl", "s_client", "-connect", product, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
              "-CAfile", ca, "-cert", cert, "-key", key, input="")
    said = old.stdout + old.stderr
    alert = re.search(r"alert (handshake failure|protocol version)", said)
    if old.returncode == 0 or not alert or "Cipher is (NONE)" not in said:
        fail(f"TLS 1.1 was not refused by the server: {said[-1500:]}")
    print(f"compose-local: openssl s_client -tls1_1: refused by the server ({alert.group(0)}, no cipher)")
    for version in ["-tls1_2", "-tls1_3"]:
        shown = run("openssl", "s_client", "-connect", product, version, "-alpn", "h2",
                    "-CAfile", ca, "-cert", cert, "-key", key, input="")
        if "ALPN protocol: h2" not in shown.stdout or "Verify return code: 0 (ok)" not in shown.stdout:
            fail(f"openssl s_client {version} -alpn h2: {shown.stdout[-1500:]}{shown.stderr[-800:]}")
    print("compose-local: openssl s_client -tls1_2 and -tls1_3: ALPN h2, server certificate verified")
    with urllib.request.urlopen(f"http://{metrics_addrs['product-svc']}/metrics", timeout=10) as r:
        refusals = sum(
            s.value for f in text_string_to_metric_families(r.read().decode())
            if f.name == "oms_listener_refusals" for s in f.samples
            if s.labels.get("limit") == "tls_handshake" and s.name.endswith("_total"))
    if refusals < 3:
        fail(f"product-svc counted {refusals} refused handshakes, want at least 3")
    with urllib.request.urlopen(f"http://{metrics_addrs['product-svc']}/metrics", timeout=10) as r:
        families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
    expiry = families.get("oms_tls_certificate_expiry_timestamp_seconds")
    days = (expiry.samples[0].value - time.time()) / 86400 if expiry and expiry.samples else None
    if days is None or not 85 < days < 91 or "oms_tls_reload_failures" not in families:
        fail(f"product-svc's certificate series (the alerts' input): expiry in {days} days")
    print(f"compose-local: product-svc counted {int(refusals)} refused handshakes (oms_listener_refusals_total)")

    # cert-manager renews: the same files, new certificates, no restart.
    before = {name: served_serial(addrs[name], tls_dir) for name in ["user-svc", "product-svc", "order-svc"]}
    subprocess.run([sys.executable, ROOT / "scripts" / "compose-secrets", "--renew-tls", "--dir", secrets_dir],
                   check=True, stdout=subprocess.DEVNULL)
    for name, old_serial in before.items():
        until(30, f"{name} serving its renewed certificate",
              lambda name=name, old_serial=old_serial: served_serial(addrs[name], tls_dir) != old_serial)
    print(f"compose-local: certificates renewed in place; new connections got new serials "
          f"({', '.join(f'{n} {before[n][:8]}…' for n in before)} replaced) without a restart")


def gateway_over_https(gw: str, tls_dir: Path) -> None:
    """The gateway's HTTPS as curl sees it: HTTP/2 and HTTP/1.1 by ALPN,
    HSTS on the answers, plain HTTP refused."""
    for flag, version in [("--http2", "2"), ("--http1.1", "1.1")]:
        shown = run("curl", "-s", "-o", "/dev/null", "-D", "-", "-w", "%{http_version} %{http_code}",
                    flag, "--cacert", tls_dir / "ca.crt", f"{gw}/readyz")
        if not shown.stdout.endswith(f"{version} 200") or "strict-transport-security: max-age=31536000" not in shown.stdout.lower():
            fail(f"curl {flag} {gw}/readyz: {shown.stdout}{shown.stderr}")
    plain = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", gw.replace("https://", "http://") + "/readyz")
    if plain.stdout == "200":
        fail("the gateway answered plain HTTP on its HTTPS port")
    print("compose-local: gateway HTTPS: curl --http2 and --http1.1 by ALPN, both with HSTS; plain HTTP refused")


def main() -> int:
    global HTTPS
    bin_dir = Path(sys.argv[1]).resolve()
    tls = "--tls" in sys.argv[2:]
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
        tls_dir = secrets_dir / "tls"
        if tls:
            compose = with_tls(compose, tls_dir)
            HTTPS = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
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

        gw = f"{'https' if tls else 'http'}://{addrs['gateway']}"
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
            with urllib.request.urlopen(request, timeout=30, context=HTTPS) as r:
                image = json.loads(r.read())["image"]
        except urllib.error.HTTPError as e:
            fail(f"image upload: {e.code} {e.read()[:500]}")
        with urllib.request.urlopen(f"{gw}{image['url']}", timeout=30, context=HTTPS) as r:
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

        if tls:
            gateway_over_https(gw, tls_dir)
            stock_clients_over_tls(addrs, tls_dir, secrets_dir, metrics_addrs)
            # After the renewal: another order through every link.
            status, body = http("POST", f"{gw}/v1/orders", {
                "lines": [{"productId": product, "quantity": 1}], "requestId": "topo-2"}, customer)
            if status != 200 or body["order"]["status"] != "ORDER_STATUS_CONFIRMED":
                fail(f"an order after the renewal: {status} {body}")
            print("compose-local: an order after the renewal CONFIRMED over every renewed link")

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

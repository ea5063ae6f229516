"""Checks deploy/k8s without a cluster:

- the base and the production overlay render with `kubectl kustomize`
  (the overlay with Secrets made by scripts/compose-secrets, in a copy);
- every rendered object validates against the Kubernetes schemas
  (kubernetes-validate, strict: no unknown fields); cert-manager's
  Certificates, which it has no schema for, against
  schemas/cert-manager-certificate-v1.json (its API reference written
  out, unknown fields refused too);
- mutual TLS in production: every service mounts the Secret of a
  Certificate, serves and dials with it and requires client certificates;
  each Certificate names every host the mesh dials its service by, and
  localhost for the pod's own probe, which runs `<svc> healthcheck` (the
  kubelet's gRPC probe speaks no TLS);
- each service runs as a Deployment of two replicas or more, with native
  probes (gRPC, or the gateway's /readyz and /healthz), resource requests
  and a memory limit, non-root with a read-only root filesystem, and has a
  PodDisruptionBudget and a HorizontalPodAutoscaler; each database has a
  migration Job running `<svc> migrate`, labelled to be applied before the
  Deployments; MySQL, Redis and Kafka are ExternalName Services;
- the NetworkPolicies, evaluated, let exactly the expected pods talk: only
  the gateway from outside, order-svc to user-svc and product-svc, the
  gateway and product-svc to user-svc, the gateway to all three;
- every variable a container gets (its env and its Secret) is one its
  binary reads (`<binary> env-vars`), and the binary accepts the values
  (`healthcheck` exits 1, unhealthy, not 2, refused).

usage: check_k8s.py KUBECTL KUBERNETES_VALIDATE BIN_DIR
"""

import base64
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
import jsonschema
from binary_env import check_binary_env

ROOT = Path(__file__).resolve().parents[2]
# The Kubernetes version the manifests are validated against (native gRPC
# probes need 1.24 or later).
KUBERNETES_VERSION = "1.32.0"
SERVICES = {"user-svc": 50051, "product-svc": 50052, "order-svc": 50053}
OURS = [*SERVICES, "gateway"]
# (from, to, port) pairs that must be allowed; every other pair among our
# pods, and from outside to anything but the gateway, must be denied.
ALLOWED_CALLS = {
    ("gateway", "user-svc", 50051),
    ("gateway", "product-svc", 50052),
    ("gateway", "order-svc", 50053),
    ("order-svc", "user-svc", 50051),
    ("order-svc", "product-svc", 50052),
    ("product-svc", "user-svc", 50051),
}


def render(kubectl: str, directory: Path) -> list[dict]:
    out = subprocess.run([kubectl, "kustomize", str(directory)], check=True,
                         capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


# Kinds of CRDs, checked against schemas of our own.
CRD_SCHEMAS = {("cert-manager.io/v1", "Certificate"): "cert-manager-certificate-v1.json"}


def validate(validator: str, objects: list[dict], name: str) -> list[str]:
    errors = []
    core = []
    for o in objects:
        schema = CRD_SCHEMAS.get((o["apiVersion"], o["kind"]))
        if schema is None:
            core.append(o)
            continue
        schema = json.loads((ROOT / "scripts" / "py" / "schemas" / schema).read_text())
        checker = jsonschema.Draft201909Validator(schema, format_checker=jsonschema.FormatChecker())
        errors += [f"{name}: {o['kind']} {o['metadata']['name']} "
                   f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in checker.iter_errors(o)]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as rendered:
        yaml.safe_dump_all(core, rendered)
        rendered.flush()
        run = subprocess.run([validator, "--kubernetes-version", KUBERNETES_VERSION, "--strict",
                              "--quiet", rendered.name], capture_output=True, text=True)
    if run.returncode != 0:
        errors.append(f"{name}: not valid against Kubernetes {KUBERNETES_VERSION}: "
                      f"{(run.stdout + run.stderr).strip()}")
    return errors


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, values = labels.get(expression["key"]), expression.get("values", [])
        if expression["operator"] == "In" and value not in values:
            return False
        if expression["operator"] == "NotIn" and value in values:
            return False
        if expression["operator"] == "Exists" and value is None:
            return False
        if expression["operator"] == "DoesNotExist" and value is not None:
            return False
    return True


def peer_matches(peer: dict, labels: dict | None, namespace_labels: dict) -> bool:
    """One `from`/`to` entry against a pod (labels None: outside the cluster)."""
    if "ipBlock" in peer:
        return labels is None
    if labels is None:
        return False
    if "namespaceSelector" in peer and not selects(peer["namespaceSelector"], namespace_labels):
        return False
    return selects(peer.get("podSelector", {}), labels)


def rule_allows(rule: dict, key: str, other: dict | None, port: int, namespace_labels: dict) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port for p in ports):
        return False
    peers = rule.get(key)
    return not peers or any(peer_matches(p, other, namespace_labels) for p in peers)


def direction_allows(policies, pod: dict, direction: str, other: dict | None, port: int,
                     namespace_labels: dict) -> bool:
    """Whether the policies selecting `pod` in `direction` let `other` through."""
    key = "from" if direction == "Ingress" else "to"
    applying = [p for p in policies if direction in p["spec"].get("policyTypes", [])
                and selects(p["spec"]["podSelector"], pod)]
    if not applying:
        return True
    rules = (r for p in applying for r in p["spec"].get(direction.lower(), []))
    return any(rule_allows(r, key, other, port, namespace_labels) for r in rules)


def check_network(objects: list[dict], pods: dict[str, dict]) -> list[str]:
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    namespace_labels = {"kubernetes.io/metadata.name": namespace["metadata"]["name"],
                        **namespace["metadata"].get("labels", {})}
    errors = []
    ports = {**SERVICES, "gateway": 8080}
    for target, port in ports.items():
        for source in [*OURS, None]:
            if source == target:
                continue
            src_labels = pods[source] if source else None
            allowed = direction_allows(policies, pods[target], "Ingress", src_labels, port, namespace_labels)
            if source is not None:
                allowed = allowed and direction_allows(policies, pods[source], "Egress", pods[target],
                                                       port, namespace_labels)
            expected = (target == "gateway" and source is None) or (source, target, port) in ALLOWED_CALLS
            if allowed != expected:
                who = source or "outside the cluster"
                errors.append(f"NetworkPolicy: {who} -> {target}:{port} is "
                              f"{'allowed' if allowed else 'denied'}, expected "
                              f"{'allowed' if expected else 'denied'}")
    return errors


def check_shape(objects: list[dict], tls: bool) -> tuple[list[str], dict[str, dict]]:
    errors = []
    deployments = of_kind(objects, "Deployment")
    pdbs = list(of_kind(objects, "PodDisruptionBudget").values())
    hpas = list(of_kind(objects, "HorizontalPodAutoscaler").values())
    pods = {}
    for name in OURS:
        deployment = deployments.get(name)
        if deployment is None:
            errors.append(f"no Deployment {name}")
            continue
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        pods[name] = labels
        container = pod["containers"][0]
        if deployment["metadata"].get("labels", {}).get("oms.example.com/step") != "rollout":
            errors.append(f"{name}: no label oms.example.com/step=rollout (applied after the migrations)")
        if spec.get("replicas", 1) < 2:
            errors.append(f"{name}: {spec.get('replicas', 1)} replicas, want 2 or more")
        if container.get("command") != [f"/usr/local/bin/{name}"]:
            errors.append(f"{name}: runs {container.get('command')}, not /usr/local/bin/{name}")
        for probe in ("readinessProbe", "livenessProbe"):
            got = container.get(probe, {})
            if name in SERVICES and tls:
                # The kubelet's gRPC probe cannot present a certificate.
                ok = got.get("exec", {}).get("command") == [f"/usr/local/bin/{name}", "healthcheck"]
            elif name in SERVICES:
                ok = got.get("grpc", {}).get("port") == SERVICES[name]
            else:
                path = "/readyz" if probe == "readinessProbe" else "/healthz"
                ok = got.get("httpGet", {}).get("path") == path
            if not ok:
                errors.append(f"{name}: {probe} {got} is not the native probe expected")
        resources = container.get("resources", {})
        if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
            errors.append(f"{name}: resources {resources} lack cpu/memory requests or a memory limit")
        errors += check_hardening(name, pod)
        if not any(selects(p["spec"]["selector"], labels) for p in pdbs):
            errors.append(f"{name}: no PodDisruptionBudget selects its pods")
        if not any(h["spec"]["scaleTargetRef"]["name"] == name and h["spec"]["minReplicas"] >= 2 for h in hpas):
            errors.append(f"{name}: no HorizontalPodAutoscaler keeping 2 replicas or more")
    jobs = of_kind(objects, "Job")
    for name in SERVICES:
        job = jobs.get(f"{name}-migrate")
        if job is None:
            errors.append(f"no migration Job {name}-migrate")
            continue
        if job["metadata"].get("labels", {}).get("oms.example.com/step") != "migrate":
            errors.append(f"{name}-migrate: no label oms.example.com/step=migrate (applied first)")
        pod = job["spec"]["template"]["spec"]
        command = pod["containers"][0].get("command", []) + pod["containers"][0].get("args", [])
        if command != [f"/usr/local/bin/{name}", "migrate"]:
            errors.append(f"{name}-migrate: runs {command}, not `{name} migrate`")
        errors += check_hardening(f"{name}-migrate", pod)
    services = of_kind(objects, "Service")
    for name in ("mysql", "redis", "kafka"):
        if services.get(name, {}).get("spec", {}).get("type") != "ExternalName":
            errors.append(f"{name}: not an ExternalName Service")
    # The mesh calls its peers by a headless Service's name: one address
    # per ready pod, so its clients spread calls over every replica.
    for deployment in of_kind(objects, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for e in container.get("env", []):
                if e["name"] not in ("USER_SVC_ADDR", "PRODUCT_SVC_ADDR", "ORDER_SVC_ADDR"):
                    continue
                host = str(e.get("value", "")).rsplit(":", 1)[0]
                if host == "0.0.0.0":
                    continue
                service = services.get(host)
                if service is None or service["spec"].get("clusterIP") != "None":
                    errors.append(f"{deployment['metadata']['name']}: {e['name']} names {host}, "
                                  "not a headless Service (clusterIP: None)")
    return errors, pods


def env_of(container: dict) -> dict:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}


def check_tls(objects: list[dict]) -> list[str]:
    """Mutual TLS on every link: each service serves and dials with a
    Certificate's Secret, and each Certificate names every host the mesh
    dials its service by."""
    errors = []
    certificates = {c["spec"]["secretName"]: c for c in of_kind(objects, "Certificate").values()}
    deployments = of_kind(objects, "Deployment")
    served_by = {}
    for name in OURS:
        pod = deployments[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = env_of(container)
        wanted = {"OMS_TLS_CERT", "OMS_TLS_KEY", "OMS_TLS_CA"} | ({"OMS_TLS_CLIENT_CA"} if name in SERVICES else
                                                                 {"GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY"})
        if not wanted <= set(env):
            errors.append(f"{name}: TLS variables {sorted(wanted - set(env))} unset")
            continue
        mount = str(Path(env["OMS_TLS_CERT"]).parent)
        volume = next((m["name"] for m in container.get("volumeMounts", []) if m["mountPath"] == mount), None)
        secret = next((v.get("secret", {}).get("secretName") for v in pod.get("volumes", [])
                       if v["name"] == volume), None)
        certificate = certificates.get(secret)
        if certificate is None:
            errors.append(f"{name}: {mount} is not the Secret of a cert-manager Certificate")
            continue
        if Path(env["OMS_TLS_CERT"]).name != "tls.crt" or Path(env["OMS_TLS_CA"]).name != "ca.crt":
            errors.append(f"{name}: OMS_TLS_CERT/OMS_TLS_CA are not cert-manager's tls.crt and ca.crt")
        spec = certificate["spec"]
        served_by[name] = set(spec.get("dnsNames", [])) | set(spec.get("ipAddresses", []))
        if not {"server auth", "client auth"} <= set(spec.get("usages", [])):
            errors.append(f"Certificate {certificate['metadata']['name']}: usages lack server auth or client auth")
        if not {"localhost", "127.0.0.1"} <= served_by[name]:
            errors.append(f"Certificate {certificate['metadata']['name']}: no localhost and 127.0.0.1 (the probe)")
    # The name verified is the name dialled: every host a peer is dialled by.
    dialled = {"USER_SVC_ADDR": "user-svc", "PRODUCT_SVC_ADDR": "product-svc", "ORDER_SVC_ADDR": "order-svc"}
    for deployment in deployments.values():
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        for var, target in dialled.items():
            host = env.get(var, "").rsplit(":", 1)[0]
            if host and host != "0.0.0.0" and host not in served_by.get(target, set()):
                errors.append(f"{deployment['metadata']['name']} dials {target} as {host}, "
                              f"which its Certificate does not name")
    return errors


def check_hardening(name: str, pod: dict) -> list[str]:
    errors = []
    security = pod.get("securityContext", {})
    if not security.get("runAsNonRoot") or security.get("runAsUser", 0) == 0:
        errors.append(f"{name}: pod securityContext {security} is not non-root")
    if pod.get("automountServiceAccountToken") is not False:
        errors.append(f"{name}: mounts a Kubernetes API token")
    for container in pod["containers"]:
        context = container.get("securityContext", {})
        if not context.get("readOnlyRootFilesystem") or context.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{name}: container securityContext {context} is not read-only and unprivileged")
    return errors


def check_variables(objects: list[dict], bin_dir: Path, tls_dir: Path) -> list[str]:
    """`tls_dir` stands in for every mounted Certificate Secret."""
    errors = []
    secrets = {name: {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
               for name, s in of_kind(objects, "Secret").items()}
    workloads = [o for o in objects if o["kind"] in ("Deployment", "Job")]
    for workload in workloads:
        name = workload["metadata"]["name"]
        for container in workload["spec"]["template"]["spec"]["containers"]:
            binary = Path(container["command"][0]).name
            env = {}
            for source in container.get("envFrom", []):
                env.update(secrets[source["secretRef"]["name"]])
            env.update({e["name"]: str(e["value"]) for e in container.get("env", [])})
            env = {k: str(tls_dir / Path(v).name) if v.startswith("/run/secrets/tls/") else v
                   for k, v in env.items()}
            errors += check_binary_env(bin_dir, binary, env, f"{name} (deploy/k8s)")
    return errors


def main() -> int:
    kubectl, validator, bin_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    errors = []
    with tempfile.TemporaryDirectory() as work:
        k8s = Path(work) / "k8s"
        shutil.copytree(ROOT / "deploy" / "k8s", k8s,
                        ignore=shutil.ignore_patterns("secrets"))
        subprocess.run([sys.executable, ROOT / "scripts" / "compose-secrets", "--dir",
                        k8s / "overlays" / "production" / "secrets"], check=True, stdout=subprocess.DEVNULL)
        base = render(kubectl, k8s / "base")
        production = render(kubectl, k8s / "overlays" / "production")
        # What cert-manager writes into each Secret, made by the dev CA.
        made = k8s / "overlays" / "production" / "secrets" / "tls"
        tls_dir = Path(work) / "mounted-tls"
        tls_dir.mkdir()
        for source, target in [("product-svc.crt", "tls.crt"), ("product-svc.key", "tls.key"), ("ca.crt", "ca.crt")]:
            shutil.copy(made / source, tls_dir / target)
        errors += validate(validator, base, "base")
        errors += validate(validator, production, "production")
        shape_errors, pods = check_shape(base, tls=False)
        errors += [f"base: {e}" for e in shape_errors]
        shape_errors, pods = check_shape(production, tls=True)
        errors += shape_errors
        if len(pods) == len(OURS):
            errors += check_network(production, pods)
            errors += check_tls(production)
        errors += check_variables(production, bin_dir, tls_dir)
    for error in errors:
        print(f"check-k8s: {error}", file=sys.stderr)
    if errors:
        return 1
    kinds = sorted({o["kind"] for o in production})
    print(f"check-k8s: base and production render and validate against Kubernetes {KUBERNETES_VERSION} "
          f"({len(production)} objects: {', '.join(kinds)}); probes, resources, hardening, budgets, "
          f"autoscalers, migration Jobs, network policies, mutual TLS (Certificates against their schema, "
          f"names dialled, probes) and every variable checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())

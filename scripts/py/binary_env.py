"""The check compose.yaml and the Kubernetes manifests share: a service
binary given a deployment's variables reads every one of them and accepts
their values.
"""

import subprocess
from pathlib import Path


def check_binary_env(bin_dir: Path, binary: str, env: dict, where: str) -> list[str]:
    """Errors (none if fine) for `binary` run with `env`, as `where` gives it.

    Every variable must be one `<binary> env-vars` lists. `<binary>
    healthcheck` then loads the configuration and probes a server that
    isn't running here: exactly 1 (unhealthy) is expected; 2 means a value
    was refused; 0, that something else answered at the configured address;
    anything else, a crash.
    """
    errors = []
    known = subprocess.run([bin_dir / binary, "env-vars"], check=True,
                           capture_output=True, text=True).stdout.split()
    unknown = sorted(set(env) - set(known))
    if unknown:
        errors.append(f"{where}: {unknown} are not read by {binary} (it reads {known})")
    probe = subprocess.run([bin_dir / binary, "healthcheck"], env={"PATH": "/usr/bin:/bin", **env},
                           capture_output=True, text=True, timeout=30)
    if probe.returncode == 2:
        errors.append(f"{where}: {binary} refuses the configuration: {probe.stderr.strip()}")
    elif probe.returncode == 0:
        errors.append(f"{where}: something already serves at the configured address "
                      f"(stop it and run again): {probe.stdout.strip()}")
    elif probe.returncode != 1:
        errors.append(f"{where}: `{binary} healthcheck` exited {probe.returncode}, "
                      f"not 1 (unhealthy): {probe.stderr.strip()}")
    return errors

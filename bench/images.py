#!/usr/bin/env python3
"""Images with dev-profile and with release binaries, both stripped: size, start to healthy,
build time.

Builds the sample app's binary in the release profile (stripped), makes `ecomweb-api:v2-release`
beside the stack's `ecomweb-api:v2` (same Dockerfile, same migrations), then starts each image
as a throwaway API container on the stack's network, in turns, and times container start to
`/health` answering and to Docker's `healthy`. Writes OUT_DIR/images.json.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STARTS = 5
NETWORK = "deployctl_default"
root = Path(__file__).resolve().parent.parent
out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest")
target = root / "target/x86_64-unknown-linux-gnu"


def run(*command, **options):
    return subprocess.run(command, check=True, capture_output=True, text=True, cwd=root, **options).stdout.strip()


def build(profile):
    """Rebuilds the app's binary after a touch of its source: the cost of each change. The dev
    profile's is stripped as scripts/build-images.sh strips it for the images."""
    binary = target / ("debug" if profile == "dev" else "release") / "ecomweb"
    cold = not binary.exists()
    (root / "sample-app/src/main.rs").touch()
    env = dict(os.environ, CARGO_PROFILE_RELEASE_STRIP="symbols")
    started = time.monotonic()
    features = ["--features", "deployctl-worker/failpoints"] if profile == "dev" else []
    subprocess.run(["cargo", "build", "-q", "--profile", profile, "-p", "ecomweb", *features], check=True, cwd=root, env=env)
    if profile == "dev":
        stripped = root / "target/images/bench-ecomweb-dev-stripped"
        stripped.parent.mkdir(parents=True, exist_ok=True)
        run("strip", "-o", str(stripped), str(binary))
        binary = stripped
    return binary, time.monotonic() - started, cold


def image_of(binary, tag):
    context = root / "target/images/bench-release"
    shutil.rmtree(context, ignore_errors=True)
    (context / "migrations").mkdir(parents=True)
    shutil.copy(binary, context / "ecomweb")
    shutil.copy(root / "images/app/Dockerfile", context / "Dockerfile")
    for migration in sorted((root / "sample-app/migrations").iterdir())[:2]:
        shutil.copytree(migration, context / "migrations" / migration.name)
    run("docker", "build", "--quiet", "--build-arg", "VERSION=v2", "--build-arg", "MIGRATIONS=2", "-t", tag, str(context),
        env=dict(os.environ, DOCKER_BUILDKIT="0"))


def start_to_health(image):
    """Container start → /health answers 200, and → Docker reports healthy, in ms."""
    name = "deployctl_bench_start"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run("docker", "create", "--name", name, "--network", NETWORK, "--env-file", ".env.api",
        "--health-interval", "1s", "--health-start-period", "15s", image, "api")
    started = time.monotonic()
    run("docker", "start", name)
    address = run("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
    answered = healthy = None
    while time.monotonic() - started < 30 and (answered is None or healthy is None):
        if answered is None:
            try:
                with urllib.request.urlopen(f"http://{address}:3001/health", timeout=1) as response:
                    if response.status == 200:
                        answered = time.monotonic() - started
            except OSError:
                pass
        if healthy is None and answered is not None:
            if run("docker", "inspect", "-f", "{{.State.Health.Status}}", name) == "healthy":
                healthy = time.monotonic() - started
        time.sleep(0.01)
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return answered * 1000, healthy * 1000


def megabytes(path):
    return path.stat().st_size / 2**20


figures = {"starts": STARTS}
binaries = {}
for label, profile in (("debug", "dev"), ("release", "release")):
    binary, seconds, cold = build(profile)
    binaries[label] = binary
    figures[label] = {"binary_mib": megabytes(binary), "build_seconds": seconds, "cold": cold}
image_of(binaries["release"], "ecomweb-api:v2-release")
images = {"debug": "ecomweb-api:v2", "release": "ecomweb-api:v2-release"}
for label, image in images.items():
    figures[label]["image_mib"] = int(run("docker", "image", "inspect", "-f", "{{.Size}}", image)) / 2**20
times = {label: [] for label in images}
for _ in range(STARTS):
    for label, image in images.items():
        times[label].append(start_to_health(image))
for label in images:
    figures[label]["start_to_health_ms"] = statistics.median(t[0] for t in times[label])
    figures[label]["start_to_healthy_ms"] = statistics.median(t[1] for t in times[label])
cold = [label for label in images if figures[label]["cold"]]
figures["build_note"] = (
    "a touch of the app's source, dependencies built" if not cold
    else f"{' and '.join(cold)} from cold, with its dependencies"
)
(out / "images.json").write_text(json.dumps(figures, indent=2))
print(json.dumps(figures, indent=2))

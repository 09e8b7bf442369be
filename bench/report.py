#!/usr/bin/env python3
"""The benchmark's report: a markdown table and a plot from one run's figures.

Reads OUT_DIR/deploy.json (cli/benches/deploy.rs), OUT_DIR/images.json (bench/images.sh)
and OUT_DIR/samples/*.csv; writes OUT_DIR/results.md and OUT_DIR/latency.png.
"""

import csv
import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest")
results = json.loads((out / "deploy.json").read_text())
images_file = out / "images.json"
images = json.loads(images_file.read_text()) if images_file.exists() else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def runs(tool):
    return [run for run in results["deploys"] if run["tool"] == tool]


def script_overhead(run):
    """For the script: its wall time outside its own steps (start-up, the env file)."""
    return run["wall_seconds"] - sum(s["end_seconds"] - s["start_seconds"] for s in run["steps"])


def row(tool):
    tool_runs = runs(tool)
    overhead = (
        median([r["history"]["orchestration_seconds"] for r in tool_runs])
        if tool == "deployctl"
        else median([script_overhead(r) for r in tool_runs])
    )
    return {
        "runs": len(tool_runs),
        "failed": sum(r["failed_requests"] for r in tool_runs),
        "requests": sum(
            f["requests"]
            for r in tool_runs
            for kind in ("keep_alive", "close")
            for f in r[kind].values()
        ),
        "p99_keep_alive": median([r["keep_alive"]["during"]["p99_ms"] for r in tool_runs]),
        "p99_close": median([r["close"]["during"]["p99_ms"] for r in tool_runs]),
        "max_during": max(
            max(r["keep_alive"]["during"]["max_ms"], r["close"]["during"]["max_ms"])
            for r in tool_runs
        ),
        "p99_before": median([r["keep_alive"]["before"]["p99_ms"] for r in tool_runs]),
        "p99_after": median([r["keep_alive"]["after"]["p99_ms"] for r in tool_runs]),
        "wall": median([r["wall_seconds"] for r in tool_runs]),
        "first_new": median([r["first_new_answer_seconds"] for r in tool_runs]),
        "last_old": median([r["last_old_answer_seconds"] for r in tool_runs]),
        "overhead": overhead,
    }


def fmt(value, unit="", digits=1):
    return "–" if value is None else f"{value:.{digits}f}{unit}"


deployctl, manual = row("deployctl"), row("manual")
machine = results["machine"]
lines = [
    "# Benchmark: deployctl against the seed's manual procedure",
    "",
    f"{machine['date']}, commit `{machine['commit']}`, {machine['cores']} cores, "
    f"{machine['memory']}, Docker {machine['docker']}. One run, both tools taking turns "
    f"({deployctl['runs']} deploys each) on the same compose stack, each under "
    f"{results['connections_per_kind']} keep-alive and {results['connections_per_kind']} "
    "`Connection: close` loops against HAProxy's `/version`. Medians over the runs; deploys "
    "without a bake window (`--bake-seconds 0`).",
    "",
    "| | deployctl | manual procedure |",
    "|---|---|---|",
    f"| failed requests (of all sent) | {deployctl['failed']} of {deployctl['requests']} | "
    f"{manual['failed']} of {manual['requests']} |",
    f"| p99 during the switch, keep-alive | {fmt(deployctl['p99_keep_alive'], ' ms')} | "
    f"{fmt(manual['p99_keep_alive'], ' ms')} |",
    f"| p99 during the switch, `Connection: close` | {fmt(deployctl['p99_close'], ' ms')} | "
    f"{fmt(manual['p99_close'], ' ms')} |",
    f"| max during the switch | {fmt(deployctl['max_during'], ' ms')} | "
    f"{fmt(manual['max_during'], ' ms')} |",
    f"| p99 before / after the switch, keep-alive | {fmt(deployctl['p99_before'], ' ms')} / "
    f"{fmt(deployctl['p99_after'], ' ms')} | {fmt(manual['p99_before'], ' ms')} / "
    f"{fmt(manual['p99_after'], ' ms')} |",
    f"| wall time, command to exit | {fmt(deployctl['wall'], ' s')} | {fmt(manual['wall'], ' s')} |",
    f"| first answer of the new version | {fmt(deployctl['first_new'], ' s')} | "
    f"{fmt(manual['first_new'], ' s')} |",
    f"| last answer of the old version | {fmt(deployctl['last_old'], ' s')} | "
    f"{fmt(manual['last_old'], ' s')} |",
    f"| overhead | {fmt(deployctl['overhead'], ' s', 2)} (workflow time between activities) | "
    f"{fmt(manual['overhead'], ' s', 2)} (script time outside its steps) |",
    "",
]

# Where deployctl's time goes, from its histories.
histories = [r["history"] for r in runs("deployctl")]
activity_names = sorted({name for h in histories for name in h["by_activity"]})
lines += [
    "## Where a deploy's time goes (deployctl, from the workflow history)",
    "",
    f"Workflow time {fmt(median([h['workflow_seconds'] for h in histories]), ' s', 2)}: "
    f"{fmt(median([h['in_activities_seconds'] for h in histories]), ' s', 2)} inside activities "
    f"(waits on the real parts), {fmt(median([h['orchestration_seconds'] for h in histories]), ' s', 2)} "
    "orchestration (scheduling, workflow tasks, gaps between activities).",
    "",
    "| activity | seconds (median of the runs; summed when it runs several times) |",
    "|---|---|",
]
for name in sorted(activity_names, key=lambda n: -median([h["by_activity"].get(n, 0) for h in histories])):
    lines.append(f"| `{name}` | {median([h['by_activity'].get(name, 0) for h in histories]):.2f} |")

steps = {}
for run in runs("deployctl"):
    for step in run["steps"]:
        steps.setdefault(step["name"], []).append(step["end_seconds"] - step["start_seconds"])
lines += ["", "| step | seconds (median) |", "|---|---|"]
for name, durations in steps.items():
    lines.append(f"| {name} | {median(durations):.2f} |")

rollback = results["rollback"]
lines += [
    "",
    "## Rollback",
    "",
    f"During a 60 s bake, `deployctl rollback` to the old colour taking every new request: "
    f"{rollback['command_to_old_colour_ms']:.0f} ms, with {rollback['failed_requests']} failed "
    f"of {rollback['requests']} requests. The manual procedure has no bake window: its old "
    "colour is replaced by step 5, so going back is a whole deploy of the old version.",
    "",
    "## Scaling: deploy time by worker count",
    "",
    "| workers | deploy wall | worker roll | history events | outcome |",
    "|---|---|---|---|---|",
]
for run in results["scaling"]:
    lines.append(
        f"| {run['workers']} | {run['wall_seconds']:.1f} s | {run['roll_workers_seconds']:.1f} s | "
        f"{run['history']['events']} | {run.get('failure') or 'completed'} |"
    )
scaling = {run["workers"]: run["wall_seconds"] for run in results["scaling"]}
if 2 in scaling and 20 in scaling:
    lines.append("")
    lines.append(f"20 workers take {scaling[20] / scaling[2]:.2f}× as long as 2.")
lines += [
    "",
    "History events per deploy, in the order they ran: "
    + ", ".join(str(n) for n in results["history_events_per_deploy"])
    + " (each deploy is its own run; the count follows the worker count, not the number of "
    "deploys before it).",
]

footprint = results["footprint"]
lines += [
    "",
    "## Worker footprint (deployctl-worker's pool, Rust SDK)",
    "",
    "| | this pool | Node SDK 1.24 (FIELD-NOTES) |",
    "|---|---|---|",
    f"| RSS idle | {', '.join(f'{m:.1f}' for m in footprint['rss_idle_mib'])} MiB | 128 MiB pre-bundled, 216 MiB bundling at start |",
    f"| RSS under the app's tasks | {', '.join(f'{m:.1f}' for m in footprint['rss_under_app_load_mib'])} MiB | 244 / 271 MiB peak |",
    f"| CPU per app workflow (`ProcessOrder`, net of idle) | {footprint['cpu_ms_per_app_workflow']:.1f} ms | 9.3 ms (echo workflow) |",
    f"| idle CPU of the pool | {footprint['cpu_ms_per_second_idle']:.1f} ms/s | – |",
    f"| start to first poll | {', '.join(f'{s:.2f}' for s in footprint['start_to_first_poll_seconds'])} s | 0.52 / 1.37 s |",
    "",
    f"The stream: {footprint['app_workflows_completed']} `ProcessOrder` workflows at "
    f"{footprint['app_workflows_per_second']:.1f}/s.",
]

if images:
    lines += [
        "",
        "## Images: dev-profile against release binaries (both stripped)",
        "",
        "| | dev profile (what the images carry) | release |",
        "|---|---|---|",
        f"| `ecomweb` binary | {images['debug']['binary_mib']:.1f} MiB | {images['release']['binary_mib']:.1f} MiB |",
        f"| image | {images['debug']['image_mib']:.1f} MiB | {images['release']['image_mib']:.1f} MiB |",
        f"| container start to `/health` answering (median of {images['starts']}) | "
        f"{images['debug']['start_to_health_ms']:.0f} ms | {images['release']['start_to_health_ms']:.0f} ms |",
        f"| container start to Docker `healthy` (median) | {images['debug']['start_to_healthy_ms']:.0f} ms | "
        f"{images['release']['start_to_healthy_ms']:.0f} ms |",
        f"| build of the binaries ({images['build_note']}) | {images['debug']['build_seconds']:.0f} s | "
        f"{images['release']['build_seconds']:.0f} s |",
    ]

lines += ["", "![latency and errors over time](latency.png)", ""]
(out / "results.md").write_text("\n".join(lines))

# The plot: one panel per tool (their first round), latency of every request over time, failed
# requests marked, the steps shaded.
# Each tool's run with the most failed requests (the first, if none failed).
first = {tool: max(runs(tool), key=lambda r: r["failed_requests"]) for tool in ("deployctl", "manual")}
figure, axes = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
colours = ["#dbe9f6", "#fde8cf", "#e2f0d9", "#f3dcef", "#eeeeee", "#fff5c2", "#d9f2f2"]
for axis, (tool, run) in zip(axes, first.items()):
    rows = list(csv.DictReader(open(out / run["samples_file"])))
    for kind, marker, colour, label in ((1, ".", "#1f77b4", "keep-alive"), (0, "x", "#2ca02c", "Connection: close")):
        points = [(float(r["seconds"]), float(r["latency_ms"])) for r in rows if int(r["keep_alive"]) == kind and r["status"].startswith("2")]
        axis.scatter([p[0] for p in points], [p[1] for p in points], s=3, marker=marker, color=colour, label=label, alpha=0.5, linewidths=0.5)
    failed = [(float(r["seconds"]), float(r["latency_ms"])) for r in rows if not r["status"].startswith("2")]
    if failed:
        axis.scatter([p[0] for p in failed], [max(p[1], 0.2) for p in failed], s=30, marker="X", color="#d62728", label=f"failed ({len(failed)})", zorder=5)
    shown = [s for s in run["steps"] if s["end_seconds"] - s["start_seconds"] > 0.01]
    for index, step in enumerate(shown):
        # Steps that run side by side (cron and workers) share the height, one lane each.
        together = [s for s in shown if s["start_seconds"] < step["end_seconds"] and step["start_seconds"] < s["end_seconds"]]
        lane, lanes = together.index(step), len(together)
        top, bottom = 1 - lane / lanes, 1 - (lane + 1) / lanes
        axis.axvspan(step["start_seconds"], step["end_seconds"], ymin=bottom, ymax=top, color=colours[index % len(colours)], alpha=0.8, zorder=0)
        axis.text((step["start_seconds"] + step["end_seconds"]) / 2, top - 0.03, step["name"], rotation=90, va="top", ha="center", fontsize=7, transform=axis.get_xaxis_transform())
    axis.axvline(0, color="black", linewidth=0.8)
    axis.axvline(run["wall_seconds"], color="black", linewidth=0.8, linestyle="--")
    axis.set_yscale("log")
    axis.set_ylabel("latency (ms)")
    axis.set_title(f"{tool}: {run['from_version']} → {run['version']}, {run['wall_seconds']:.1f} s, {run['failed_requests']} failed requests", fontsize=10)
    axis.legend(loc="lower right", fontsize=8, markerscale=3)
axes[-1].set_xlabel("seconds since the command started (solid line: start; dashed: exit)")
figure.tight_layout()
figure.savefig(out / "latency.png", dpi=80)
print(f"wrote {out / 'results.md'} and {out / 'latency.png'}")

"""Draw ``docs/architecture.png``, the README's architecture picture, from the files that define
the platform: every service of ``docker-compose.yml`` (grouped by what it is: an API, a worker, a
one-shot job, a store, monitoring), its ``depends_on`` edges, and the processes Prometheus scrapes
(``infra/prometheus/prometheus.yml``). Only the three kinds of users and their entry points are
written here.

    .venv/bin/python docs/architecture.py          # rewrite docs/architecture.png
    .venv/bin/python docs/architecture.py --check  # exit 1 when the committed picture differs

``tests/unit/test_architecture_picture.py`` runs ``--check``'s comparison.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "infra" / "prometheus" / "prometheus.yml"
PICTURE = ROOT / "docs" / "architecture.png"

USERS: dict[str, tuple[str, ...]] = {
    "production services\n(/assign, /predict, /outcomes)": ("assignment", "router"),
    "experiment owners\n(API, /ui console, CLI)": ("assignment", "analyzer", "grafana"),
    "on-call engineers\n(alerts, dashboards)": ("alertmanager", "grafana"),
}
"""Who calls what: the three users of the README and the services they reach first."""

ROWS = ("users", "api", "store", "background")
"""Rows top to bottom; monitoring is a column on the right."""
TITLES = {
    "users": "users",
    "api": "SplitLab APIs",
    "store": "stores",
    "background": "workers and\none-shot setup",
    "monitoring": "monitoring",
}
COLOURS = {
    "users": "#f4f4f4",
    "api": "#cfe2f3",
    "worker": "#d9ead3",
    "job": "#eeeeee",
    "store": "#fce5cd",
    "monitoring": "#ead1dc",
}
HALF_W, HALF_H = 1.3, 0.42
"""Half the width and height of a box, in data units."""


@dataclass(frozen=True)
class Node:
    name: str
    row: str
    detail: str


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def classify(services: dict[str, Any]) -> list[Node]:
    """Each compose service with its row: ours (built from the Dockerfile) are APIs when they
    publish a port, jobs when they do not restart, else workers; images others publish are
    stores when one of ours depends on them, else monitoring."""
    ours = {name for name, spec in services.items() if "build" in spec}
    needed = {dep for name in ours for dep in depends_on(services[name])}
    nodes = []
    for name, spec in services.items():
        ports = ", ".join(str(p).split(":")[-1] for p in spec.get("ports", ()))
        if name in ours:
            if ports:
                row = "api"
            elif str(spec.get("restart", "")) == "no":
                row = "job"
            else:
                row = "worker"
            detail = f":{ports}" if ports else " ".join(program(spec.get("command") or []))
        else:
            row = "store" if name in needed else "monitoring"
            detail = f"{spec['image']}" + (f"\n:{ports}" if ports else "")
        nodes.append(Node(name, row, detail))
    return nodes


def program(command: list[str]) -> list[str]:
    """A command without its options (``celery -A x worker -P prefork`` -> ``celery worker``)."""
    words: list[str] = []
    skip = False
    for word in command:
        if not skip and not word.startswith("-"):
            words.append(word)
        skip = word.startswith("-") and "=" not in word
    return words


def depends_on(spec: dict[str, Any]) -> list[str]:
    deps = spec.get("depends_on") or []
    return list(deps) if isinstance(deps, (list, dict)) else []


def scraped(prometheus: dict[str, Any]) -> list[str]:
    """The processes Prometheus scrapes: the file_sd target files are named after them."""
    names = []
    for job in prometheus.get("scrape_configs", []):
        for sd in job.get("file_sd_configs", []):
            names += [Path(f).stem for f in sd.get("files", [])]
    return names


def layout(nodes: list[Node]) -> dict[str, tuple[float, float]]:
    """Box centres: the users, the APIs, the stores and the background processes in rows
    (stores between the APIs and the workers, so that edges to them cross no box), monitoring
    in a column on the right."""
    rows: dict[str, list[str]] = {"users": list(USERS), "api": [], "store": [], "background": []}
    monitoring: list[str] = []
    for node in nodes:
        if node.row == "monitoring":
            monitoring.append(node.name)
        else:
            rows["background" if node.row in ("worker", "job") else node.row].append(node.name)
    columns = max(len(names) for names in rows.values())
    centres: dict[str, tuple[float, float]] = {}
    for level, row in enumerate(ROWS):
        y = 1.5 * (len(ROWS) - 1 - level)
        step = 3.0 * columns / len(rows[row])
        for index, name in enumerate(rows[row]):
            centres[name] = (step * (index + 0.5), y)
    # Top to bottom in the order data flows to the on-call: dashboards, metrics, alerts.
    order = {"grafana": 0, "prometheus": 1, "alertmanager": 2}
    monitoring.sort(key=lambda name: order.get(name, len(order)))
    for index, name in enumerate(monitoring):
        centres[name] = (3.0 * columns + 2.0, 1.5 * (len(ROWS) - 1.5 - index * 1.0))
    return centres


def border(centre: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from ``centre`` to ``toward`` leaves the box around ``centre``."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    t = min(HALF_W / abs(dx) if dx else float("inf"), HALF_H / abs(dy) if dy else float("inf"))
    return centre[0] + dx * t, centre[1] + dy * t


def draw(out: Path, compose: Path = COMPOSE, prometheus: Path = PROMETHEUS) -> list[str]:
    """Write the picture to ``out``; returns every label drawn (for the test)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    services = load(compose)["services"]
    nodes = classify(services)
    kinds = {node.name: node for node in nodes}
    centres = layout(nodes)
    right = max(x for x, _ in centres.values()) + HALF_W + 0.1
    top = max(y for _, y in centres.values()) + HALF_H + 0.1
    fig, ax = plt.subplots(figsize=(14, 7.2), dpi=100)
    ax.set_xlim(-2.2, right)
    ax.set_ylim(-1.0, top)
    ax.axis("off")
    labels: list[str] = []
    for level, row in enumerate(ROWS):
        y = 1.5 * (len(ROWS) - 1 - level)
        ax.text(-2.1, y, TITLES[row], fontsize=9, style="italic", va="center", ha="left")
        labels.append(TITLES[row])
    monitoring_x = max(x for x, _ in centres.values())
    ax.text(monitoring_x, top - 0.1, TITLES["monitoring"], fontsize=9, style="italic",
            ha="center", va="top")  # fmt: skip
    labels.append(TITLES["monitoring"])
    for name, (x, y) in centres.items():
        node = kinds.get(name, Node(name, "users", ""))
        box = FancyBboxPatch(
            (x - HALF_W + 0.05, y - HALF_H + 0.05), 2 * HALF_W - 0.1, 2 * HALF_H - 0.1,
            boxstyle="round,pad=0.05", facecolor=COLOURS[node.row], edgecolor="#555555",
            linewidth=0.8, zorder=2,
        )  # fmt: skip
        ax.add_patch(box)
        text = name if not node.detail else f"{name}\n{node.detail}"
        ax.text(x, y, text, fontsize=8.5, ha="center", va="center", zorder=3)
        labels.append(name)

    def arrow(a: str, b: str, colour: str, style: str, width: float, bend: float = 0.0) -> None:
        start, end = border(centres[a], centres[b]), border(centres[b], centres[a])
        ax.annotate(
            "", xy=end, xytext=start,
            arrowprops={"arrowstyle": "-|>", "color": colour, "linestyle": style,
                        "linewidth": width, "shrinkA": 0, "shrinkB": 0,
                        "connectionstyle": f"arc3,rad={bend}"},
            zorder=1,
        )  # fmt: skip

    jobs = {node.name for node in nodes if node.row == "job"}
    for user, targets in USERS.items():
        for target in targets:
            if target in centres:
                arrow(user, target, "#1f4e79", "-", 1.5)
    for name, spec in services.items():
        for dep in depends_on(spec):
            if dep not in jobs:
                # Between two of our processes the line bends around the stores' row.
                ours = kinds[dep].row not in ("store", "monitoring")
                arrow(name, dep, "#9a9a9a", "-", 0.7, bend=-0.35 if ours else 0.0)
    for target in scraped(load(prometheus)):
        if target in centres:
            arrow("prometheus", target, "#a64d79", ":", 1.0, bend=0.12)
    ax.text(
        right, -0.95,
        "blue: who calls what    grey: depends on (docker-compose.yml; every process also waits "
        "for the one-shot jobs)    dotted: Prometheus scrapes /metrics (infra/prometheus)",
        fontsize=8, ha="right", va="bottom", color="#444444",
    )  # fmt: skip
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed picture")
    args = parser.parse_args(argv)
    if not args.check:
        draw(PICTURE)
        print(f"wrote {PICTURE.relative_to(ROOT)}")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "architecture.png"
        draw(fresh)
        if fresh.read_bytes() != PICTURE.read_bytes():
            print(f"{PICTURE.relative_to(ROOT)} is stale: run python docs/architecture.py")
            return 1
    print(f"{PICTURE.relative_to(ROOT)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README works as written, on the platform as ``make run`` leaves it.

``make run``'s last step, ``splitlab demo``, runs first (on the whole platform: the four services,
the consumer and the Celery worker as real processes, on ports and a database of this module's
own) and must leave the demo experiment with units in every variant. Then every code block of
the README runs, in order, in one bash (``bash -e``; a Python block runs in the venv), from a
folder with the repository's files and a ``.env`` naming this platform, with no ``SPLITLAB_*``
variable in the environment: the README itself must read its URLs and key from ``.env``.

A block that cannot run here is marked ``<!-- not-run: REASON -->`` on the line before it, and
only the reasons of :data:`NOT_RUN` are accepted, each for the commands it names: a failing
curl cannot be excused by marking it.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from splitlab.contracts.topics import EVENT_TOPICS
from splitlab.simulation.demo import DEMO_KEY
from tests.integration.system.conftest import Platform, running_platform
from tests.support.databases import own_database
from tests.support.stack import REPO, StackEndpoints

README = REPO / "README.md"
FENCE = re.compile(r"(?:<!-- (?P<marker>[^>]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)```", re.S)
DONE = "::readme block done::"
RUNS = {"sh": "bash", "bash": "bash", "python": "python"}

NOT_RUN: dict[str, tuple[str, ...]] = {
    "not-run: starts the platform, or tests it; this test runs on the platform it started": (
        "make ",
    ),
    "not-run: needs a Docker engine": ("docker compose", "SPLITLAB_ADMIN_API_KEY="),
}
"""The accepted reasons, each with the commands (line prefixes) it may excuse."""
OUTPUTS = ("output: splitlab demo",)
"""Marks of ```text blocks that show a command's output; the test compares each with it."""


@dataclass(frozen=True)
class Block:
    index: int
    lang: str
    body: str
    marker: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.body.splitlines() if line.strip()]


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return [
        Block(i + 1, m["lang"], m["body"], m["marker"] or "")
        for i, m in enumerate(FENCE.finditer(text))
    ]


def problems(blocks: list[Block]) -> list[str]:
    """What is wrong with the README's marks: an unmarked block in a language this test cannot
    run, a marker that is no accepted reason, a reason that does not cover its block."""
    found = []
    for block in blocks:
        if block.marker in OUTPUTS and block.lang == "text":
            continue
        if not block.marker:
            if block.lang not in RUNS:
                found.append(f"block {block.index}: ```{block.lang}``` cannot run; mark it")
            continue
        allowed = NOT_RUN.get(block.marker)
        if allowed is None:
            found.append(f"block {block.index}: unknown mark <!-- {block.marker} -->")
            continue
        for line in block.lines:
            command = line.strip()
            if not command.startswith("#") and not command.startswith(allowed):
                found.append(f"block {block.index}: {block.marker!r} does not excuse {command!r}")
    return found


def shown_output(mark: str) -> list[str]:
    """The lines of the README's output block marked ``mark``."""
    (block,) = [b for b in readme_blocks() if b.marker == mark]
    return [line.strip() for line in block.lines]


def normalised(lines: list[str], state: Path | None = None) -> list[str]:
    """Lines with every local URL as ``URL`` (the test's ports are not `make run`'s) and the
    state folder as ``.stack/``."""
    out = []
    for line in lines:
        if state is not None:
            line = line.replace(f"{state}/", ".stack/")
        out.append(re.sub(r"http://127\.0\.0\.1:\d+", "URL", line.strip()))
    return out


def script_of(blocks: list[Block]) -> str:
    """One bash script: the blocks to run in order, a Python block through the venv's python,
    each followed by a line saying it is done (so a failure names its block)."""
    parts = ["set -eo pipefail\n"]
    for block in blocks:
        if block.marker:
            continue
        if RUNS[block.lang] == "python":
            parts.append(f".venv/bin/python - <<'README_PYTHON'\n{block.body}README_PYTHON\n")
        else:
            parts.append(block.body)
        parts.append(f"echo '{DONE}' {block.index} $SECONDS\n")
    return "".join(parts)


def test_every_block_runs_or_carries_an_accepted_reason() -> None:
    blocks = readme_blocks()
    assert problems(blocks) == []
    run = [b for b in blocks if not b.marker]
    assert len(run) >= 10, "most of the README runs"
    assert {b.lang for b in run} >= {"sh", "python"}


def test_the_marks_are_checked() -> None:
    text = (
        "<!-- not-run: needs a Docker engine -->\n```sh\ncurl -sS http://x/broken\n```\n"
        "```text\noutput\n```\n"
        "<!-- not-run: it is slow -->\n```sh\nmake run\n```\n"
        "<!-- not-run: starts the platform, or tests it; this test runs on the platform it "
        "started -->\n```sh\nmake run     # starts it\n# a comment\n```\n"
    )
    assert problems(readme_blocks(text)) == [
        "block 1: 'not-run: needs a Docker engine' does not excuse 'curl -sS http://x/broken'",
        "block 2: ```text``` cannot run; mark it",
        "block 3: unknown mark <!-- not-run: it is slow -->",
    ]


def test_a_failing_block_names_itself(tmp_path: Path) -> None:
    text = "```sh\ntrue\n```\n```python\nraise SystemExit(3)\n```\n```sh\ntrue\n```\n"
    blocks = readme_blocks(text)
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    result = subprocess.run(
        ["bash", "-c", script_of(blocks)], cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 3
    assert re.findall(f"{DONE} (\\d+)", result.stdout) == ["1"]


def group_at_the_end(bootstrap: str) -> str:
    """A new consumer group with its offsets at the current end of the event topics: the
    analyzer then counts this module's events only, not the shared broker's history (where
    `make run`'s own demo, of the same key, may have left events)."""
    group = f"readme-test-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in EVENT_TOPICS.values()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        assert partitions, "the event topics are missing: run `splitlab kafka create-topics`"
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()})
    finally:
        consumer.close()
    return group


@pytest.fixture(scope="module")
def platform(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The whole-system platform (``running_platform``), reading only events sent from now."""
    group = group_at_the_end(stack.kafka_bootstrap_servers)
    with (
        own_database(stack.database_url, "splitlab_readme") as database_url,
        running_platform(
            stack, database_url, tmp_path_factory.mktemp("readme"),
            SPLITLAB_ANALYZER_CONSUMER_GROUP=group,
        ) as platform,
    ):  # fmt: skip
        yield platform


@pytest.fixture(scope="module")
def demo(platform: Platform) -> subprocess.CompletedProcess[str]:
    """``make run``'s demo step on the platform: ``splitlab demo`` as the Makefile calls it."""
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "splitlab"), "demo"],
        env=platform.env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    return result


def test_make_runs_demo_step_leaves_units_in_every_variant(
    platform: Platform, demo: subprocess.CompletedProcess[str]
) -> None:
    assert demo.returncode == 0, demo.stderr[-3000:]
    shown = normalised(shown_output("output: splitlab demo"))
    printed = normalised(demo.stdout.splitlines(), platform.state)
    assert [line for line in shown if line not in printed] == [], "the README shows this output"
    endpoints = platform.endpoints
    with platform.admin() as client:
        results = client.get(f"{endpoints.analyzer_url}/experiments/{DEMO_KEY}/results")
        assert results.status_code == 200, results.text
        units = results.json()["sample"]["units"]
        assert units["control"] > 0
        assert units["treatment"] > 0
        experiment = client.get(f"{endpoints.assignment_url}/experiments/{DEMO_KEY}").json()
        assert experiment["status"] == "running"
    assert (platform.state / "run" / "simulator.pid").is_file()
    again = subprocess.run(
        [str(REPO / ".venv" / "bin" / "splitlab"), "demo"],
        env=platform.env, cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "created" not in again.stderr
    assert f"experiment {DEMO_KEY}" in again.stderr, "reused, not created twice"
    with platform.admin() as client:
        listed = client.get(f"{endpoints.assignment_url}/experiments").json()
    assert [e["key"] for e in listed["experiments"]].count(DEMO_KEY) == 1


def checkout(platform: Platform, folder: Path) -> Path:
    """A folder like a user's clone after ``make run``: the repository's files (links) and a
    ``.env`` naming this platform."""
    folder.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in (".env", ".stack", ".git"):
            (folder / entry.name).symlink_to(entry)
    settings = {k: v for k, v in platform.env.items() if k.startswith("SPLITLAB_")}
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return folder


@pytest.mark.timeout(600)
def test_every_block_of_the_readme_runs_as_written(
    platform: Platform, demo: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    assert demo.returncode == 0, "the demo step failed; see the test before"
    workdir = checkout(platform, tmp_path / "checkout")
    blocks = readme_blocks()
    user_env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITLAB_")}
    result = subprocess.run(
        ["bash", "-c", script_of(blocks)], cwd=workdir, env=user_env,
        capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    done = [int(i) for i in re.findall(f"{DONE} (\\d+)", result.stdout)]
    print("README blocks done (block, s):", re.findall(f"{DONE} (\\d+ \\d+)", result.stdout))
    if result.returncode != 0:
        failed = next(b for b in blocks if not b.marker and b.index not in done)
        pytest.fail(
            f"README block {failed.index} failed (exit {result.returncode}):\n{failed.body}\n"
            f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    assert done == [b.index for b in blocks if not b.marker]
    # What the README says the blocks show.
    assert "signed_up" in result.stdout, "the quickstart's results table"
    assert "'treatment': {'action':" in result.stdout, "the decisions from the JSON results"
    assert "on-call,demo-team" in result.stdout, "the README's amtool comment"
    assert '"model_name":"ranker"' in result.stdout, "the README's /predict comment"
    for report in ("quickstart.html", "demo.html"):
        html = (workdir / report).read_text(encoding="utf-8")
        assert html.lower().startswith("<!doctype html>")
        assert "<svg" in html
    with httpx.Client(timeout=30) as client:
        answer = client.get(f"{platform.endpoints.analyzer_url}/experiments/quickstart/results")
    assert answer.status_code == 200

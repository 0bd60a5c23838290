"""The baseline of ``bench_assign``: a FastAPI app answering a constant JSON body.

Same framework, server and settings as the assignment service, none of its work: the ratio of
the two throughputs is what SplitLab's own code costs.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

ANSWER = {
    "experiment_key": "bench",
    "variant": "control",
    "in_experiment": True,
    "reason": "sticky",
    "sticky": True,
    "bucket_version": 0,
    "degraded": False,
}


@app.post("/assign")
async def assign() -> dict[str, object]:
    return ANSWER

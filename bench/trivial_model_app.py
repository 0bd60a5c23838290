"""The baseline of ``bench_router``: the same scikit-learn model called directly in a FastAPI
endpoint (no assignment, no registry, no events). Model file from ``BENCH_MODEL_PATH``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import skops.io
from fastapi import FastAPI

app = FastAPI()
MODEL = skops.io.load(os.environ["BENCH_MODEL_PATH"])
CLASSES = [str(c) for c in MODEL.classes_]


@app.post("/predict")
async def predict(body: dict[str, Any]) -> dict[str, Any]:
    features = body["features"]
    row = MODEL.predict_proba(np.array([[features["x1"], features["x2"]]], dtype=float))[0]
    probabilities = dict(zip(CLASSES, row.tolist(), strict=True))
    return {"prediction": int(np.argmax(row)), "probabilities": probabilities}

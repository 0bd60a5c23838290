"""A remote model server for ``bench_router``'s remote-model case: KServe V1's shape
(``{"instances": [...]}`` in, ``{"predictions": [{"value", "probabilities"}]}`` out), the same
scikit-learn model as ``trivial_model_app`` (``BENCH_MODEL_PATH``). With
``BENCH_CLOSE_CONNECTIONS=1`` every answer says ``Connection: close`` (a server, or a proxy, that
does not keep connections alive)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import skops.io
from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()
MODEL = skops.io.load(os.environ["BENCH_MODEL_PATH"])
CLASSES = [str(c) for c in MODEL.classes_]
HEADERS = {"connection": "close"} if os.environ.get("BENCH_CLOSE_CONNECTIONS") == "1" else {}


@app.post("/v1/models/m:predict")
async def predict(body: dict[str, Any]) -> JSONResponse:
    rows = [[i["x1"], i["x2"]] for i in body["instances"]]
    predictions = [
        {"value": int(np.argmax(p)), "probabilities": dict(zip(CLASSES, p.tolist(), strict=True))}
        for p in MODEL.predict_proba(np.array(rows, dtype=float))
    ]
    return JSONResponse({"predictions": predictions}, headers=HEADERS)

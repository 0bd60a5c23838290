"""``POST /analyses/synthetic-control``: a synthetic control analysis of an uploaded panel.

Thin on purpose: parse the multipart form (a CSV or Parquet file plus the same parameters as
``splitlab synth``), call ``splitlab.synthetic_control`` and return its ``to_dict()`` JSON. Bad
input is a 422 whose ``detail`` names the field; uploads above ``MAX_UPLOAD_BYTES`` are a 413.
The analysis is CPU-bound, so it runs in the thread pool, not on the event loop.
"""

from __future__ import annotations

import io
import warnings
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

import splitlab
from splitlab.core.errors import ArgumentError
from splitlab.web.auth import require_compute

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
"""Largest accepted upload (20 MiB): a panel of a few hundred units over years of weeks."""

router = APIRouter(tags=["analyses"], dependencies=[Depends(require_compute)])

Method = Literal["auto", "classic", "augmented", "forecast"]


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}],
    )


async def _read_limited(upload: UploadFile) -> bytes:
    content = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise HTTPException(
            status_code=413,
            detail=f"file: larger than {MAX_UPLOAD_BYTES} bytes; aggregate or split the panel",
        )
    if not content:
        raise _unprocessable("file", "the uploaded file is empty")
    return content


def parse_panel(content: bytes, filename: str | None) -> pd.DataFrame:
    """CSV unless the name ends in .parquet/.pq or the bytes start with Parquet's magic."""
    is_parquet = content[:4] == b"PAR1" or (filename or "").lower().endswith((".parquet", ".pq"))
    try:
        if is_parquet:
            return pd.read_parquet(io.BytesIO(content))
        return pd.read_csv(io.BytesIO(content))
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _unprocessable("file", f"could not be read as CSV or Parquet ({exc})") from None


def analyse(data: pd.DataFrame, **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the result carries its own warnings
        result = splitlab.synthetic_control(data, **kwargs)
    out: dict[str, Any] = result.to_dict()
    return out


@router.post("/analyses/synthetic-control")
async def synthetic_control(
    file: Annotated[UploadFile, File(description="Panel as CSV or Parquet.")],
    unit_col: Annotated[str, Form(min_length=1)],
    time_col: Annotated[str, Form(min_length=1)],
    outcome_col: Annotated[str, Form(min_length=1)],
    treated: Annotated[
        list[str], Form(min_length=1, description="Treated unit; repeat the field for several.")
    ],
    intervention_time: Annotated[str, Form(min_length=1)],
    method: Annotated[Method, Form()] = "auto",
    placebo: Annotated[bool, Form()] = True,
    alpha: Annotated[float, Form(gt=0, lt=1)] = 0.05,
    drop_incomplete: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Estimate the effect of an intervention on the treated unit; same JSON as the library."""
    data = parse_panel(await _read_limited(file), file.filename)
    try:
        return await run_in_threadpool(
            analyse,
            data,
            unit_col=unit_col,
            time_col=time_col,
            outcome_col=outcome_col,
            treated=treated[0] if len(treated) == 1 else treated,
            intervention_time=intervention_time,
            method=method,
            placebo=placebo,
            alpha=alpha,
            drop_incomplete=drop_incomplete,
        )
    except ArgumentError as exc:  # the library's ``data`` is the uploaded ``file``
        field = "file" if exc.argument == "data" else exc.argument
        raise _unprocessable(field, exc.message) from None
    except ValueError as exc:  # the data itself, with no argument at fault
        raise _unprocessable("file", str(exc)) from None

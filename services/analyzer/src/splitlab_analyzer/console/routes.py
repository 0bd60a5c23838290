"""The console's routes under ``/ui``: parse, call one function of ``ConsolePages`` or
``UploadStore``, render a template (Jinja2, autoescape on for every template).

Everything a page loads (style sheet, script) is served from ``/ui/static`` by this service;
charts are inline SVG drawn by the server. Pages other than the login form and the static files
need a session; every POST needs the session's CSRF token.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from splitlab.core.analysis.files import AnalysisSpec, SyntheticControlSpec, VarianceReductionSpec
from splitlab.core.analysis.holdout import MAX_DAYS
from splitlab.core.analysis.segments import SegmentCorrection
from splitlab.core.errors import ArgumentError
from splitlab.core.stats.adjustment import parse_method
from splitlab.platform.errors import InvalidInputError, NotFoundError, SplitLabError
from splitlab.reports.numbers import number, p_value, share, signed_percent
from splitlab_analyzer.console import access
from splitlab_analyzer.console.pages import ConsolePages, Filters, results_csv, short_time
from splitlab_analyzer.console.uploads import (
    TASK_NAME,
    InvalidFileError,
    UploadStore,
    progress_of,
)
from splitlab_analyzer.deps import state

router = APIRouter(prefix="/ui", include_in_schema=False)
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
METHODS = ("auto", "cuped", "cupac", "regression", "none")


def _template_source(name: str) -> str:
    package = resources.files("splitlab_analyzer.console") / "templates" / name
    return package.read_text(encoding="utf-8")


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FunctionLoader(_template_source),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
ENVIRONMENT.globals.update(
    short_time=short_time, quote=quote, fmt=number, pct=signed_percent, share=share, p=p_value
)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    page = ENVIRONMENT.get_template(name).render(
        csrf_field=access.CSRF_FIELD,
        csrf=access.csrf_token(request) if "session" in request.scope else "",
        logged_in=access.logged_in(request),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    # Only this service's own files; inline SVG needs no script. Reports embed their plots as
    # data: images.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self'; frame-ancestors 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def error_page(request: Request, error: SplitLabError) -> HTMLResponse:
    column = getattr(error, "column", None)
    row = getattr(error, "row", None)
    return render(request, "error.html.j2", status=error.status_code, error=error.message,
                  field=error.field, column=column, row=row)  # fmt: skip


def pages_of(request: Request) -> ConsolePages:
    return state(request).console_pages


def store_of(request: Request) -> UploadStore:
    return state(request).upload_store


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)


async def guarded(request: Request, work: Any) -> Response:
    """Run a page's work when logged in; a domain error becomes an error page."""
    if not access.logged_in(request):
        return to_login(request)
    try:
        response: Response = await work()
        return response
    except SplitLabError as exc:
        return error_page(request, exc)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404)
    body = (resources.files("splitlab_analyzer.console") / "static" / name).read_bytes()
    return Response(body, media_type=STATIC[name],
                    headers={"Cache-Control": "max-age=3600"})  # fmt: skip


def _safe_next(target: str) -> str:
    return target if target.startswith("/ui") and not target.startswith("//") else "/ui"


@router.get("/login")
async def login_form(request: Request, next: str = "/ui") -> HTMLResponse:
    settings = state(request).settings
    enabled = "session" in request.scope and settings.admin_api_key is not None
    return render(request, "login.html.j2", next=_safe_next(next), enabled=enabled, error=None)


@router.post("/login")
async def login(
    request: Request,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    settings = state(request).settings
    try:
        access.check_csrf(request, csrf_token)
        access.log_in(request, settings, key)
    except SplitLabError as exc:
        return render(request, "login.html.j2", status=exc.status_code, next=_safe_next(next),
                      enabled=settings.admin_api_key is not None, error=exc.message)  # fmt: skip
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    try:
        access.check_csrf(request, csrf_token)
    except SplitLabError as exc:
        return error_page(request, exc)
    access.log_out(request)
    return RedirectResponse("/ui/login", status_code=303)


@router.get("")
async def experiments(request: Request, status: str = "", owner: str = "", q: str = "") -> Response:
    async def work() -> Response:
        filters = Filters(status=status, owner=owner, text=q)
        rows, statuses = await run_in_threadpool(pages_of(request).experiments, filters)
        return render(request, "experiments.html.j2", rows=rows, statuses=statuses,
                      filters=filters)  # fmt: skip

    return await guarded(request, work)


@router.get("/experiments/{key}")
async def experiment(
    request: Request,
    key: str,
    segment: str = "",
    segment_correction: SegmentCorrection = "holm",
) -> Response:
    async def work() -> Response:
        page = await run_in_threadpool(
            pages_of(request).experiment, key, segment, segment_correction
        )
        return render(request, "experiment.html.j2", page=page)

    return await guarded(request, work)


@router.get("/holdout")
async def holdout(
    request: Request, metric: str = "", days: int = 28, sequential: bool = False
) -> Response:
    async def work() -> Response:
        page = await run_in_threadpool(pages_of(request).holdout_page, metric, days, sequential)
        return render(request, "holdout.html.j2", page=page, max_days=MAX_DAYS)

    return await guarded(request, work)


@router.get("/experiments/{key}/results.{kind}")
async def download(request: Request, key: str, kind: str) -> Response:
    async def work() -> Response:
        if kind not in ("json", "csv"):
            raise NotFoundError(f"downloads are results.json or results.csv, not {kind!r}")
        automation = pages_of(request).automation
        body = await run_in_threadpool(automation.results_for, key, "auto", False)
        filename = quote(f"{key}-results.{kind}")
        headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"}
        if kind == "json":
            return Response(json.dumps(body, indent=2), media_type="application/json",
                            headers=headers)  # fmt: skip
        return Response(results_csv(body), media_type="text/csv", headers=headers)

    return await guarded(request, work)


@router.get("/uploads/new")
async def upload_form(request: Request) -> Response:
    async def work() -> Response:
        return render(request, "upload.html.j2", methods=METHODS, error=None, form={})

    return await guarded(request, work)


def parse_spec(form: dict[str, str]) -> AnalysisSpec:
    """The analysis the upload form asks for; ``InvalidInputError`` naming the field."""
    kind = form.get("kind", "")

    def need(name: str, label: str) -> str:
        value = form.get(name, "").strip()
        if not value:
            raise InvalidInputError(f"{label} is required for this analysis", field=name)
        return value

    def names(name: str) -> list[str]:
        return [n.strip() for n in form.get(name, "").split(",") if n.strip()]

    if kind == "variance_reduction":
        try:
            method = parse_method(form.get("method", "auto"))
        except ArgumentError as exc:
            raise InvalidInputError(exc.message, field=exc.argument) from None
        metrics = names("metrics")
        if not metrics:
            raise InvalidInputError("name at least one metric column", field="metrics")
        tests = {}
        for item in names("tests"):
            metric, equals, test = (part.strip() for part in item.partition("="))
            if not (metric and equals and test):
                raise InvalidInputError(
                    f"tests: write METRIC=TEST, e.g. revenue=mann_whitney; got {item!r}",
                    field="tests",
                )
            tests[metric] = test
        try:
            return VarianceReductionSpec(
                variant_col=need("variant_col", "the variant column"),
                control=need("control", "the control variant"),
                metrics=metrics,
                covariates=names("covariates"),
                method=method,
                segment=form.get("segment", "").strip() or None,
                tests=tests,
                cluster_col=form.get("cluster_col", "").strip() or None,
                in_experiment_covariates=names("in_experiment_covariates"),
            )
        except ArgumentError as exc:
            raise InvalidInputError(exc.message, field=exc.argument) from None
    if kind == "synthetic_control":
        return SyntheticControlSpec(
            unit_col=need("unit_col", "the unit column"),
            time_col=need("time_col", "the time column"),
            outcome_col=need("outcome_col", "the outcome column"),
            treated=need("treated", "the treated unit"),
            intervention_time=need("intervention_time", "the intervention time"),
        )
    raise InvalidInputError(
        "choose the analysis: variance reduction or synthetic control", field="kind"
    )


@router.post("/uploads")
async def upload(request: Request) -> Response:
    if not access.logged_in(request):
        return to_login(request)
    form_data = await request.form()
    try:
        return await _upload(request, form_data)
    finally:
        await form_data.close()


async def _upload(request: Request, form_data: Any) -> Response:
    fields = {k: v for k, v in form_data.items() if isinstance(v, str)}
    try:
        access.check_csrf(request, fields.get(access.CSRF_FIELD))
    except SplitLabError as exc:
        return error_page(request, exc)
    file = form_data.get("file")
    try:
        if not isinstance(file, UploadFile) or not file.filename:
            raise InvalidInputError("choose a CSV or Parquet file to upload", field="file")
        spec = parse_spec(fields)
        store = store_of(request)
        saved = await run_in_threadpool(store.save, file.file, file.filename, spec)
        celery = state(request).celery
        folder = str((store.root / saved.id).resolve())
        sent = await run_in_threadpool(celery.send_task, TASK_NAME, [folder])
        store.queued(saved, str(sent.id))
    except SplitLabError as exc:
        status = exc.status_code
        column = exc.column if isinstance(exc, InvalidFileError) else None
        row = exc.row if isinstance(exc, InvalidFileError) else None
        return render(request, "upload.html.j2", status=status, methods=METHODS,
                      error=exc.message, error_field=exc.field, column=column, row=row,
                      form=fields)  # fmt: skip
    return RedirectResponse(f"/ui/uploads/{saved.id}", status_code=303)


def _progress(request: Request, upload_id: str) -> Any:
    store = store_of(request)
    saved = store.get(upload_id)
    has_report = (store.root / upload_id / "report.html").is_file()
    task_state, info = "PENDING", None
    if saved.task_id is not None:
        result = state(request).celery.AsyncResult(saved.task_id)
        task_state, info = result.state, result.info
    return saved, progress_of(task_state, info, has_report)


@router.get("/uploads/{upload_id}")
async def upload_page(request: Request, upload_id: str) -> Response:
    async def work() -> Response:
        saved, progress = await run_in_threadpool(_progress, request, upload_id)
        return render(request, "job.html.j2", upload=saved, progress=progress,
                      created=time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                            time.gmtime(saved.created_at)))  # fmt: skip

    return await guarded(request, work)


@router.get("/uploads/{upload_id}/status")
async def upload_status(request: Request, upload_id: str) -> Response:
    if not access.logged_in(request):
        return JSONResponse({"state": "login_required"}, status_code=401)
    try:
        _, progress = await run_in_threadpool(_progress, request, upload_id)
    except SplitLabError as exc:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)
    return JSONResponse(progress.__dict__, headers={"Cache-Control": "no-store"})


@router.get("/uploads/{upload_id}/report")
async def upload_report(request: Request, upload_id: str) -> Response:
    async def work() -> Response:
        page = await run_in_threadpool(store_of(request).report, upload_id)
        if page is None:
            raise NotFoundError("the report is not ready yet", field="upload_id")
        headers = {**SECURITY_HEADERS, "Content-Security-Policy":
                   "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                   "frame-ancestors 'self'"}  # fmt: skip
        return HTMLResponse(page, headers=headers)

    return await guarded(request, work)


@router.get("/uploads/{upload_id}/result.json")
async def upload_result(request: Request, upload_id: str) -> Response:
    async def work() -> Response:
        body = await run_in_threadpool(store_of(request).result, upload_id)
        if body is None:
            raise NotFoundError("the result is not ready yet", field="upload_id")
        return JSONResponse(body)

    return await guarded(request, work)

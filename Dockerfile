# One image for every SplitLab process (services, consumer, Celery worker and beat); the
# command picks the process. Built from the same uv.lock as local development.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY client/pyproject.toml client/pyproject.toml
COPY services/assignment/pyproject.toml services/assignment/pyproject.toml
COPY services/router/pyproject.toml services/router/pyproject.toml
COPY services/analyzer/pyproject.toml services/analyzer/pyproject.toml
COPY services/trainer/pyproject.toml services/trainer/pyproject.toml
COPY shared/src shared/src
COPY client/src client/src
COPY services services
RUN uv sync --frozen --no-dev --no-group bench
ENV PATH="/app/.venv/bin:$PATH" SPLITLAB_STATE_DIR=/var/lib/splitlab
RUN useradd --system --uid 10001 splitlab && mkdir -p /var/lib/splitlab \
    && chown splitlab /var/lib/splitlab
USER splitlab
EXPOSE 8001 8002 8003 8004
CMD ["uvicorn", "splitlab_assignment.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8001"]

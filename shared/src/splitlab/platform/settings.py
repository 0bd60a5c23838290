"""SplitLab settings, read from ``SPLITLAB_*`` environment variables and the ``.env`` file.

Every field mirrors its environment variable (``database_url`` <- ``SPLITLAB_DATABASE_URL``) and
is documented in ``.env.example``. Nothing here is created at import time: services call
``load_settings()`` in their startup code and pass the object on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["assignment", "router", "analyzer", "trainer"]


KeyRole = Literal["admin", "read", "caller"]


class NamedKey(BaseModel):
    """One entry of ``SPLITLAB_API_KEYS``: the secret and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: SecretStr = Field(min_length=16)
    role: KeyRole


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPLITLAB_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- where things are --------------------------------------------------------------
    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql+psycopg2://splitlab:splitlab@127.0.0.1:5432/splitlab"
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    celery_broker_url: str = "redis://127.0.0.1:6379/1"
    celery_result_backend: str = "redis://127.0.0.1:6379/2"
    prometheus_url: str = "http://127.0.0.1:9090"
    alertmanager_url: str = "http://127.0.0.1:9093"
    assignment_url: str = "http://127.0.0.1:8001"
    router_url: str = "http://127.0.0.1:8002"
    analyzer_url: str = "http://127.0.0.1:8003"
    trainer_url: str = "http://127.0.0.1:8004"
    state_dir: Path = Path(".stack")
    """Local state of the processes: the event spool, the model store, pid files, logs."""

    # --- security -----------------------------------------------------------------------
    admin_api_key: SecretStr | None = None
    """Bearer key for admin endpoints. Unset: every admin call answers 401 with how to set it."""
    admin_key_name: str = Field(default="admin", min_length=1, max_length=200)
    """The name the audit log gives whoever calls with ``admin_api_key``."""
    assign_api_key: SecretStr | None = None
    """Optional bearer key for /assign, /assign/batch, /predict and /outcomes (the production
    callers); unset means open to callers. Admin keys are accepted there too."""
    read_api_key: SecretStr | None = None
    """Optional read-only key: set, every read (experiments, models, metric definitions,
    results, analyzer actions) needs it or an admin key; unset, reads are open. Expensive
    computations (``POST /analyses/synthetic-control``) always need it or an admin key."""
    analyzer_api_key: SecretStr | None = None
    """The analyzer's own admin key for its calls to the assignment service (the guardrail
    pause), audited as ``analyzer_key_name``. Unset: the analyzer sends ``admin_api_key`` and
    the audit log names ``admin_key_name``."""
    analyzer_key_name: str = Field(default="splitlab-analyzer", min_length=1, max_length=200)
    """The name the audit log gives calls with ``analyzer_api_key``."""
    api_keys: dict[str, NamedKey] = Field(default_factory=dict)
    """More keys, one per person or system, as JSON: ``{"alice": {"key": "...", "role":
    "admin"}}`` (roles ``admin``, ``read``, ``caller``); the audit log names the key's name."""

    # --- HTTP ---------------------------------------------------------------------------
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    """Largest request body accepted; larger ones get 413 before they are read into memory."""
    access_log: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    """How long /readyz waits for one dependency before calling it down."""
    health_interval_seconds: float = Field(default=15.0, gt=0)
    """How often each service refreshes its ``splitlab_dependency_up`` gauges."""

    # --- Kafka --------------------------------------------------------------------------
    kafka_topic_partitions: int = Field(default=6, ge=1)
    kafka_topic_replication_factor: int = Field(default=1, ge=1)
    kafka_client_id: str = "splitlab"
    kafka_api_version: str = Field(default="3.9", pattern=r"^\d+\.\d+(\.\d+)?$")
    """Kafka protocol version the clients speak (brokers 3.9 and 4.x understand 3.9)."""

    # --- assignment ---------------------------------------------------------------------
    sticky_ttl_seconds: int = Field(default=7_776_000, gt=0)
    """Lifetime of a unit's sticky-assignment hash in Redis, renewed whenever a record is added."""
    sticky_redis_timeout_seconds: float = Field(default=0.1, gt=0)
    """Socket connect/read timeout of /assign's Redis calls; past it the answer is degraded."""
    sticky_breaker_seconds: float = Field(default=5.0, ge=0)
    """After a Redis failure, /assign skips Redis this long (answers degraded) before retrying."""
    holdout_share: float = Field(default=0.0, ge=0, le=1)
    """Share of all units in the global holdout: control everywhere, measured as their own group."""
    holdout_seed: str = Field(default="splitlab-global-holdout", min_length=1)
    """Hash seed of the global holdout; changing it reshuffles who is held out."""
    preflight_checks: bool = True
    """Check at create and start that an experiment's metrics are defined in the analyzer and
    its models registered in the router (``start`` is refused otherwise unless forced). Off
    only where the assignment service runs without the analyzer and the router."""
    preflight_timeout_seconds: float = Field(default=5.0, gt=0)
    """How long a pre-flight call to the analyzer or the router may take."""
    experiment_cache_refresh_seconds: float = Field(default=5.0, gt=0)
    """How often each replica reloads changed experiments from Postgres (its staleness bound)."""

    # --- router -------------------------------------------------------------------------
    router_event_logging: bool = True
    """Publish exposure, prediction and outcome events from the router (off only to measure
    what logging costs; outcomes are then accepted and dropped)."""
    router_predict_threads: int = Field(default=4, ge=1)
    """Threads that run scikit-learn predictions off the event loop."""
    router_model_timeout_ms: int = Field(default=1000, ge=1)
    """Default time limit of one model call (a model's own ``timeout_ms`` wins)."""
    router_model_refresh_seconds: float = Field(default=5.0, gt=0)
    """How often each router replica reloads the model registry (new or removed versions)."""
    router_max_outcomes: int = Field(default=1000, ge=1)
    """Most outcomes in one ``POST /outcomes`` batch."""
    router_occurred_at_window_days: float = Field(default=365.0, gt=0)
    """How far from now an outcome's ``occurred_at`` may lie, either way; further ones answer
    422 (a time years off is a client bug, and would be analysed as a post-exposure event)."""
    router_max_artifact_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest model file ``POST /models`` takes as an upload (413 beyond it); this route's
    body limit instead of ``max_body_bytes``."""
    router_max_pending_shadows: int = Field(default=1000, ge=0)
    """Shadow predictions running at once; past it new shadow copies are skipped (counted)."""
    router_served_requests: int = Field(default=100_000, ge=0)
    """Recent ``request_id``s remembered with their experiment and variant, so ``/outcomes``
    counts outcomes per variant (``splitlab_router_variant_outcomes_total``); 0 = off."""
    router_outcome_type_labels: list[str] = Field(
        default_factory=lambda: ["click", "conversion", "revenue"]
    )
    """Outcome types counted under their own label; others count as ``other`` (outcome types
    are caller-chosen, so the label set stays bounded)."""

    # --- analyzer -----------------------------------------------------------------------
    analyzer_consumer_group: str = Field(default="splitlab-analyzer", min_length=1)
    """Kafka consumer group of the ingestion processes; replicas in one group share partitions."""
    analyzer_batch_size: int = Field(default=5000, ge=1)
    """Most events written to Postgres in one transaction (one offset commit per batch)."""
    analyzer_batch_wait_ms: int = Field(default=500, ge=1)
    """Longest wait for a batch to fill before writing what arrived."""
    analyzer_consumer_metrics_port: int = Field(default=9108, ge=0, le=65535)
    """Port of the consumer process's Prometheus /metrics (0: not served)."""
    analyzer_consumer_metrics_host: str = "127.0.0.1"
    """Address the consumer's /metrics listens on (0.0.0.0 in containers for Prometheus)."""
    analyzer_retry_initial_seconds: float = Field(default=0.5, gt=0)
    """First back-off after a failed database write; doubles up to the maximum."""
    analyzer_retry_max_seconds: float = Field(default=30.0, gt=0)
    """Longest back-off between retries of a failed database write."""
    analyzer_results_ttl_seconds: float = Field(default=60.0, gt=0)
    """How long a computed result is served from the cache before it is recomputed."""
    analyzer_refresh_interval_seconds: float = Field(default=300.0, ge=0)
    """Seconds between periodic refreshes (results, gauges, guardrails) of running experiments;
    0 turns the periodic refresh off."""
    analyzer_guardrail_interval_seconds: float = Field(default=60.0, ge=0)
    """Seconds between guardrail passes (guardrail metrics and SRM only) of running
    experiments: the worst-case time from a violation to the pause (docs/analyzer.md). 0 = off
    (the full refresh still checks guardrails)."""
    analyzer_history_interval_seconds: float = Field(default=3600.0, ge=0)
    """Seconds between results snapshots (the history behind ``GET
    /experiments/{key}/results/history`` and the console's effect-over-time chart) of running
    and paused experiments; a stopped experiment gets a final one. 0 turns snapshots off."""
    analyzer_fallback_share_threshold: float = Field(default=0.5, ge=0, le=1)
    """A treatment whose share of predictions answered by control's model (fallback) is above
    this is flagged (``flags.treatment_fallback``, gauge, alert)."""
    analyzer_alert_min_units: int = Field(default=1000, ge=0)
    """Units an experiment needs before the effect and SRM alerts may fire (a noise guard:
    exported as ``splitlab_analyzer_alert_min_units``, which the alert rules compare with)."""
    analyzer_rollup_catch_up_seconds: float = Field(default=10.0, ge=0)
    """Seconds between catch-ups of the stored per-unit rollups with the units ingestion noted
    since (``rollup_backlog``): a results read then finds a short backlog and stays on the
    rollups. 0 turns it off (a read and the periodic refresh still catch up first)."""

    # --- trainer ------------------------------------------------------------------------
    trainer_queue: str = Field(default="splitlab.trainer", min_length=1)
    """Celery queue of the trainer's tasks (the worker consumes it; the analyzer and the
    trainer API send to it)."""
    trainer_schedule_seconds: float = Field(default=60.0, gt=0)
    """How often beat looks for experiments whose CUPAC models are due."""
    trainer_every_seconds: float = Field(default=900.0, gt=0)
    """Default retraining frequency of both model kinds while an experiment gains units (an
    entity's own frequency wins)."""
    trainer_history_days: float = Field(default=7.0, gt=0)
    """Default window of the metric a pre-experiment model predicts, for metrics without an
    attribution window (an entity's own value wins)."""
    trainer_time_budget_seconds: float = Field(default=300.0, gt=0)
    """CUPAC's time budget: boosting is abandoned when its projected time would exceed it."""
    trainer_read_slices: int = Field(default=2, ge=1, le=16)
    """Concurrent queries one training reads its per-unit rows with (disjoint slices of the
    units, one synchronized snapshot): Postgres runs each query on one core, so on a machine
    with N cores N slices read about N times faster. 1 reads in one query."""
    trainer_soft_time_limit_seconds: float = Field(default=1800.0, gt=0)
    """A training past this fails with the reason in the catalogue."""
    trainer_time_limit_seconds: float = Field(default=2100.0, gt=0)
    """Hard limit: the worker's child is killed (after the soft limit could not stop it)."""
    trainer_visibility_timeout_seconds: float = Field(default=7200.0, gt=0)
    """Redis redelivers a task whose worker vanished without acknowledging it after this long;
    keep it above the hard time limit."""

    # --- Web console (the analyzer's /ui) ----------------------------------------------
    console_session_secret: SecretStr | None = None
    """Key that signs the console's session cookie; unset: derived from the admin key (so
    every analyzer replica signs alike without another secret to distribute)."""
    console_session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    """How long a console login lasts."""
    console_secure_cookie: bool = False
    """Send the session cookie over HTTPS only (turn on behind TLS)."""
    console_upload_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    """Largest file the console accepts for an analysis (a 1,000,000-row CSV of a few columns
    is 30-60 MB)."""
    console_upload_dir: Path | None = None
    """Where uploaded files and their reports are kept (the analyzer writes, the trainer's
    worker reads: a shared volume when they run on different hosts); unset: STATE_DIR/uploads."""
    console_upload_retention_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    """Uploaded files and their reports are deleted this long after the upload."""

    # --- Postgres -----------------------------------------------------------------------
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)

    @field_validator(
        "admin_api_key",
        "assign_api_key",
        "read_api_key",
        "analyzer_api_key",
        "console_session_secret",
        "console_upload_dir",
        mode="before",
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg2://")):
            raise ValueError(
                "SPLITLAB_DATABASE_URL must be a postgresql:// or postgresql+psycopg2:// URL"
            )
        return value

    @model_validator(mode="after")
    def _keys_are_distinct(self) -> Settings:
        """A key names one caller: the same secret under two names would make the audit lie."""
        seen: dict[str, str] = {}
        for name, secret in self.key_secrets():
            if secret in seen:
                raise ValueError(
                    f"{name}: the same key as {seen[secret]}; give every key its own secret"
                )
            seen[secret] = name
        return self

    def key_secrets(self) -> list[tuple[str, str]]:
        """(setting name, secret) of every configured key."""
        single = [
            ("SPLITLAB_ADMIN_API_KEY", self.admin_api_key),
            ("SPLITLAB_ASSIGN_API_KEY", self.assign_api_key),
            ("SPLITLAB_READ_API_KEY", self.read_api_key),
            ("SPLITLAB_ANALYZER_API_KEY", self.analyzer_api_key),
        ]
        found = [(name, key.get_secret_value()) for name, key in single if key is not None]
        found += [
            (f"SPLITLAB_API_KEYS[{name}]", entry.key.get_secret_value())
            for name, entry in self.api_keys.items()
        ]
        return found

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def model_store_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def upload_dir(self) -> Path:
        """Folder of the console's uploads (``console_upload_dir`` or STATE_DIR/uploads)."""
        return self.console_upload_dir or self.state_dir / "uploads"


def load_settings(**overrides: object) -> Settings:
    """Read the settings now (environment, then ``.env``); ``overrides`` win over both."""
    return Settings(**overrides)  # type: ignore[arg-type]

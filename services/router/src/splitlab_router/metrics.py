"""Prometheus metrics of the router (HTTP ones are in ``splitlab.web``, the assignment
runtime's in ``splitlab.assigning.telemetry``, the event publisher's in
``splitlab.platform.messaging.publisher``).

Label sets are bounded: experiments, variants and models are admin-created; ``outcome`` and
``kind`` are small enums. Outcome types are caller-chosen, so they are not a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

PREDICTIONS = Counter(
    "splitlab_router_predictions",
    "Model calls by experiment, variant and model; outcome ok, error or timeout; shadow or not.",
    ["experiment", "variant", "model", "outcome", "shadow"],
)
MODEL_LATENCY = Histogram(
    "splitlab_router_model_duration_seconds",
    "Time of one model call (thread hop or HTTP round trip included).",
    ["experiment", "variant", "model"],
    buckets=_FAST,
)
PREDICT_LATENCY = Histogram(
    "splitlab_router_predict_duration_seconds",
    "Time to answer a /predict (assignment, model, fallback; parsing and serialization "
    "excluded), by experiment.",
    ["experiment"],
    buckets=_FAST,
)
PREDICT_ERRORS = Counter(
    "splitlab_router_predict_errors",
    "/predict requests answered with an error, by experiment and kind.",
    ["experiment", "kind"],
)
FALLBACKS = Counter(
    "splitlab_router_fallbacks",
    "Variant predictions answered by the control model because the variant's model failed.",
    ["experiment", "variant", "model"],
)
SHADOWS_SKIPPED = Counter(
    "splitlab_router_shadows_skipped",
    "Shadow copies not run because too many were already running.",
    ["experiment"],
)
OUTCOMES = Counter("splitlab_router_outcomes", "Outcome events accepted by /outcomes.")
VARIANT_OUTCOMES = Counter(
    "splitlab_router_variant_outcomes",
    "Outcomes by the experiment and variant whose /predict they answer (by request_id, "
    "remembered per replica; else variant 'unattributed'); outcome_type is one of "
    "SPLITLAB_ROUTER_OUTCOME_TYPE_LABELS or 'other'.",
    ["experiment", "variant", "outcome_type"],
)
VARIANT_OUTCOME_VALUES = Counter(
    "splitlab_router_variant_outcome_value",
    "Sum of the values of the outcomes counted in splitlab_router_variant_outcomes_total.",
    ["experiment", "variant", "outcome_type"],
)
VARIANT_UNITS_SERVED = Counter(
    "splitlab_router_variant_predictions_served",
    "/predict answers by experiment and variant (fallbacks included): the denominator of the "
    "per-variant outcome rates.",
    ["experiment", "variant"],
)
MODELS_LOADED = Gauge("splitlab_router_models_loaded", "Model versions this replica can serve.")
MODEL_LOAD_FAILURES = Counter(
    "splitlab_router_model_load_failures",
    "Registered model versions that failed to load (bad file, checksum mismatch).",
    ["model"],
)
REGISTRY_REFRESH_FAILURES = Counter(
    "splitlab_router_registry_refresh_failures",
    "Periodic model-registry or experiment-cache refreshes that failed (last state kept).",
)

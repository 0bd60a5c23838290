"""Changes to metric definitions, with the rules that span definitions (a ratio's parts exist,
are plain and in use; a part stays plain): what the routes call, raising domain errors."""

from __future__ import annotations

from splitlab.core.errors import ArgumentError
from splitlab.platform.errors import ConflictError, InvalidInputError, NotFoundError
from splitlab_analyzer.definitions import MetricDef
from splitlab_analyzer.repositories import MetricRepository
from splitlab_analyzer.schemas import MetricUpdate


def create(metrics: MetricRepository, definition: MetricDef) -> MetricDef:
    """Store a new definition; 409 when the name is taken."""
    check_parts(definition, metrics)
    if not metrics.create(definition):
        raise ConflictError(f"a metric named {definition.name!r} exists", field="name")
    return definition


def update(metrics: MetricRepository, name: str, patch: MetricUpdate) -> MetricDef:
    """Apply ``patch`` to the stored definition ``name``; 404, or 422 naming the field."""
    current = metrics.get(name)
    if current is None:
        raise NotFoundError(f"no metric named {name!r}", field="name")
    try:
        updated = patch.apply(current)
    except ArgumentError as exc:
        raise InvalidInputError(exc.message, field=exc.argument) from None
    check_parts(updated, metrics)
    if updated.is_ratio and not current.is_ratio:
        users = metrics.ratios_using(name)
        if users:
            raise InvalidInputError(
                f"numerator: {name!r} is a part of the ratio metrics {users}; "
                "a part must stay a plain metric",
                field="numerator",
            )
    stored = metrics.update(updated)
    if stored is None:
        raise NotFoundError(f"no metric named {name!r}", field="name")
    return stored


def deprecate(metrics: MetricRepository, name: str, reason: str) -> MetricDef:
    """Mark ``name`` deprecated (once); 404 when there is no such metric."""
    stored = metrics.deprecate(name, reason)
    if stored is None:
        raise NotFoundError(f"no metric named {name!r}", field="name")
    return stored


def check_parts(definition: MetricDef, metrics: MetricRepository) -> None:
    """A ratio's numerator and denominator exist, are plain and are not deprecated."""
    if not definition.is_ratio:
        return
    parts = metrics.many([str(definition.numerator), str(definition.denominator)])
    for field in ("numerator", "denominator"):
        name = str(getattr(definition, field))
        part = parts.get(name)
        if part is None:
            raise InvalidInputError(
                f"{field}: no metric named {name!r}; define it first", field=field
            )
        if part.is_ratio:
            raise InvalidInputError(f"{field}: must be a plain metric, not a ratio", field=field)
        if part.deprecated_at is not None:
            raise InvalidInputError(
                f"{field}: metric {name!r} is deprecated ({part.deprecation_reason}); "
                "use its replacement",
                field=field,
            )

"""Per-unit rollups: an experiment's per-unit slots (events per stream and window around the
first exposure) stored in ``unit_rollups`` and kept in step by the consumer, so results
aggregate one row per unit instead of joining every event."""

"""Results: SQL aggregation to sufficient statistics, the stats engine, monitoring extras."""

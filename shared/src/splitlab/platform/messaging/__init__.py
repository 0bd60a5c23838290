"""Kafka messaging: topic administration, the event publisher and its spool."""

"""Kafka messaging: topic names, topic administration, the event publisher and its spool."""

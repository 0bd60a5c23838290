"""Kafka -> Postgres ingestion: the analyzer's consumer-group process.

- :mod:`.rows` turns raw Kafka records into table rows or dead letters (pure);
- :mod:`.sink` writes a batch to Postgres in one transaction, idempotently by ``event_id``;
- :mod:`.loop` polls, writes, commits offsets after the database commit, and backs off while
  Postgres is down;
- :mod:`.main` is the process entry point (``splitlab-analyzer-consumer``);
- :mod:`.telemetry` holds its Prometheus series.
"""

"""Topic administration: SplitLab creates its topics explicitly (the broker never auto-creates)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from splitlab.contracts.topics import ALL_TOPICS
from splitlab.platform.connections import create_kafka_admin
from splitlab.platform.settings import Settings


def ensure_topics(settings: Settings, topics: Iterable[str] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet; return the names created (existing ones stay)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = create_kafka_admin(settings, timeout_ms=15_000)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                name=topic,
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_topic_replication_factor,
                topic_configs={"min.insync.replicas": "1"},
            )
            for topic in missing
        ]
        # Another process may create them between our list and create: same outcome.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(new, validate_only=False)
        return missing
    finally:
        admin.close()

"""Pydantic contracts shared across services: the Kafka events (``events``) and HTTP bodies."""

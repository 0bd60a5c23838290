"""The platform floor: what the services stand on, with the I/O libraries (install
``splitlab[platform]``).

- ``settings``: every ``SPLITLAB_*`` setting; ``training``: the trainer's task names;
- ``errors``: the domain error hierarchy (HTTP status and field, no web framework);
- ``connections``: the one factory of Postgres engines, Redis and Kafka clients;
- ``storage``: SQLAlchemy models, Alembic migrations, Redis keys, storage errors;
- ``messaging``: topic administration, the event publisher, its spool and shipper;
- ``health``: dependency checks; ``telemetry``: logs and Prometheus helpers.
"""

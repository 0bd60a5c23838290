"""The assignment decision, pure: ``bucketing`` (GrowthBook-compatible hashing and ranges),
``targeting`` (attribute conditions), ``lifecycle`` (experiment statuses and their changes) and
``decision`` (an ``ExperimentDefinition`` and a unit in, a variant and its reason out). The
runtime that serves it with a cache, Redis and Kafka is ``splitlab.assigning``."""

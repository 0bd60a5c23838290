"""The contracts floor: what crosses a process boundary, as pydantic types and names.

- ``events``: the Kafka events; ``topics``: the topic names (built here and nowhere else);
- ``names``, ``text``, ``times``, ``values``: the rules HTTP bodies and events share (keys and
  names, storable text, UTC times, bounded values).
"""

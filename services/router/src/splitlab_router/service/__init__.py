"""The router's service layer, one module per concept its routes serve:

- ``predict``: ``/predict`` (assignment, the variant's model, fallback, shadows, events);
- ``outcomes``: ``/outcomes`` (validation, events, per-variant counters);
- ``models``: the model registry (``/models``) and the catalog of loaded models;
- ``serving``: the kinds of served model (scikit-learn in a thread, remote HTTP servers);
- ``served``: which experiment and variant answered a recent ``/predict``.
"""

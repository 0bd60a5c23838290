"""The analyzer's service layer, one module per concept its routes and background jobs serve:

- ``metrics``: changes to metric definitions, with the rules that span definitions;
- ``automation``: refreshing results and acting on them (cache, gauges, guardrails, SRM);
- ``training``: asking the trainer for a CUPAC training through Celery's broker.

The results path has a package of its own (``splitlab_analyzer.results``: its service,
repository and schemas), as do ingestion (``consumer/``), rollups and the console.
"""

"""The pure floor: statistics, synthetic control, the analysis and the assignment decision.

Plain functions over plain data, importing numpy, scipy, scikit-learn and pandas (pyarrow to read
files) and nothing that talks to a server; ``make lint`` holds it (docs/layout.md).

- ``stats``: the tests, variance reduction, power, sequential and multiple testing;
- ``synth``: synthetic control;
- ``analysis``: ``analyze`` on per-unit data, its typed results, uploaded files' checks;
- ``assignment``: bucketing, targeting, lifecycle and the decision built on them.
"""

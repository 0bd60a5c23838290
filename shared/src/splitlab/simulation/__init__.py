"""A simulated world to run SplitLab against: users with attributes and history, real
scikit-learn models of different quality trained on data the world generates, and outcomes
whose probability depends on which model served each request.

- :mod:`splitlab.simulation.world`: the users and their outcomes (pure, seeded), and the true
  effects a run should find;
- :mod:`splitlab.simulation.models`: trains the demo models and writes them as ``.skops`` files;
- :mod:`splitlab.simulation.driver`: sends a run's traffic to a running platform
  (``/unit-features``, ``/predict``, ``/outcomes``) and counts what it sent;
- :mod:`splitlab.simulation.demo`: sets up the demo experiment (``make run``).
"""

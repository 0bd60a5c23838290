"""The analysis of an experiment's per-unit data: ``analyze`` (module ``analyze``), its typed
results (``results``) and the checks of an uploaded file (``files``). ``splitlab.analyze`` is the
public name."""

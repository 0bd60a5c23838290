"""The assignment service's service layer, one module per concept its routes serve:

- ``assign``: ``/assign`` and ``/assign/batch`` over ``splitlab.assigning.AssignmentService``;
- ``experiments``: the experiment registry (lifecycle, PATCH rules, audit log, cache refresh);
- ``preflight``: the checks a start runs against the analyzer and the router.
"""

"""Which experiment and variant answered a recent ``/predict``: lets ``/outcomes`` count
outcomes per variant (``splitlab_router_variant_outcomes_total``) for the dashboards.

A bounded map from ``request_id`` to (experiment, variant), oldest forgotten first, local to
the replica: an outcome whose prediction another replica served, or that came too late or
without a ``request_id``, is counted under ``variant="unattributed"``. The analyzer's results
stay the record; these counters only show rates over time.
"""

from __future__ import annotations

from collections import OrderedDict

UNATTRIBUTED = ("", "unattributed")


class ServedRequests:
    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self._capacity = capacity
        self._served: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def record(self, request_id: str, experiment: str, variant: str) -> None:
        if self._capacity == 0:
            return
        self._served[request_id] = (experiment, variant)
        while len(self._served) > self._capacity:
            self._served.popitem(last=False)

    def lookup(self, request_id: str | None) -> tuple[str, str]:
        """(experiment, variant) of the request, else :data:`UNATTRIBUTED`."""
        if request_id is None:
            return UNATTRIBUTED
        return self._served.get(request_id, UNATTRIBUTED)

    def __len__(self) -> int:
        return len(self._served)


__all__ = ["UNATTRIBUTED", "ServedRequests"]

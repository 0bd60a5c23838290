"""The client production services use to call SplitLab: ``/assign``, ``/predict``, ``/outcomes``.

    from splitlab_client import SplitLabClient

    with SplitLabClient(assignment_url="http://assign:8001", router_url="http://router:8002") as sl:
        answer = sl.predict("user-42", "ranker-v3", {"x1": 0.3, "x2": 1.0})
        ...
        sl.send_outcome("user-42", "conversion", 1.0, request_id=answer.request_id)

``AsyncSplitLabClient`` has the same methods as coroutines. A caller's product never breaks
because of an experiment:

- every call has a timeout (``timeout`` seconds, connect included);
- idempotent calls are retried a bounded number of times (``retries``, with a short back-off)
  on connection errors, timeouts and 5xx: ``/assign`` (deterministic and sticky) and
  ``/outcomes`` (each outcome carries an ``event_id`` made here, so a retry is stored once);
  ``/predict`` is not retried (a retry would log a second prediction);
- when SplitLab cannot answer (connection errors, timeouts, 5xx, 408 and 429 after the
  retries), ``assign``, ``assign_batch`` and ``predict`` return a *fallback* answer: the
  control variant, ``fallback=True``, the reason in ``error`` (and ``predict`` returns the
  caller's ``default`` prediction); ``send_outcomes`` returns ``delivered=False`` with the
  event ids, so the caller may resend them later. Each fallback logs one warning on the
  ``splitlab_client`` logger that says why.

What does raise is a request SplitLab *rejects*: any other 4xx answer (404 unknown experiment,
422 invalid field, 401/403 wrong key, 413 too large) raises :class:`RequestRejectedError` with the
status, the service's message and the field it names. Answering control there would hide a
bug (a misspelled experiment key looked like a healthy experiment where everyone got
control) until somebody read the results. Bad arguments raise ``ValueError``.
"""

from __future__ import annotations

from splitlab_client.answers import (
    AssignAnswer,
    BatchAssignAnswer,
    Outcome,
    OutcomeReceipt,
    PredictAnswer,
)
from splitlab_client.blocking import SplitLabClient
from splitlab_client.concurrent import AsyncSplitLabClient
from splitlab_client.errors import RequestRejectedError, SplitLabError

__all__ = [
    "AssignAnswer",
    "AsyncSplitLabClient",
    "BatchAssignAnswer",
    "Outcome",
    "OutcomeReceipt",
    "PredictAnswer",
    "RequestRejectedError",
    "SplitLabClient",
    "SplitLabError",
]

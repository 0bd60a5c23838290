"""Trainer tasks. CUPAC training and scheduled refreshes arrive with the trainer issue; for now
the worker carries one real task the platform uses: a round-trip probe of the task pipeline
(broker -> worker -> result backend) that ``/readyz`` and the tests exercise."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task


@shared_task(name="splitlab.trainer.probe")
def probe(token: str) -> dict[str, Any]:
    """Echo ``token`` with the worker's identity: proves a real worker executed the task."""
    return {"token": token, "hostname": socket.gethostname(), "pid": os.getpid()}

"""The router's memory of recent predictions (outcomes counted per variant)."""

from __future__ import annotations

import pytest

from splitlab_router.service.served import UNATTRIBUTED, ServedRequests


def test_a_served_request_is_found_and_the_oldest_is_forgotten_past_capacity() -> None:
    served = ServedRequests(2)
    served.record("r1", "exp", "control")
    served.record("r2", "exp", "treatment")
    served.record("r3", "other", "control")
    assert len(served) == 2
    assert served.lookup("r1") == UNATTRIBUTED
    assert served.lookup("r2") == ("exp", "treatment")
    assert served.lookup("r3") == ("other", "control")


def test_no_request_id_or_capacity_zero_is_unattributed() -> None:
    served = ServedRequests(0)
    served.record("r1", "exp", "control")
    assert served.lookup("r1") == UNATTRIBUTED
    assert served.lookup(None) == UNATTRIBUTED


def test_a_negative_capacity_names_the_argument() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ServedRequests(-1)

"""``/outcomes`` refuses a value beyond the stored-value limit (issue 13, item 2): 422 naming the
field and the limit, for one outcome and inside a batch; nothing is accepted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration


def test_an_outcome_beyond_the_limit_is_refused_naming_the_field_and_the_limit(
    router: TestClient,
) -> None:
    one = router.post(
        "/outcomes", json={"unit_id": "u", "outcome_type": "purchase", "value": 1e308}
    )
    assert one.status_code == 422, one.text
    error = one.json()["error"]
    assert error["field"] == "value"
    assert "between -1e+12 and 1e+12" in error["message"]
    batch = router.post(
        "/outcomes",
        json={"outcomes": [{"unit_id": "u", "outcome_type": "purchase", "value": 1.0},
                           {"unit_id": "u", "outcome_type": "purchase", "value": -2e12}]},
    )  # fmt: skip
    assert batch.status_code == 422, batch.text
    assert batch.json()["error"]["field"] == "outcomes.1.value"
    fine = router.post(
        "/outcomes", json={"unit_id": "u", "outcome_type": "purchase", "value": 1e12}
    )
    assert fine.status_code == 202, fine.text

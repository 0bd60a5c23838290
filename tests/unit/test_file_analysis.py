"""Checks of uploaded files: the message names the column and the first row at fault (row 1 is
the first data row); CSV and Parquet are told apart by content (no server)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from splitlab.core.analysis.files import (
    FileCheckError,
    SyntheticControlSpec,
    VarianceReductionSpec,
    check_frame,
    read_upload,
    spec_from_dict,
    spec_to_dict,
)
from splitlab.core.errors import ArgumentError

VR = VarianceReductionSpec("variant", "control", ["revenue"], ["pre"])


def checked(tmp_path: Path, text: str, spec: VarianceReductionSpec | SyntheticControlSpec = VR):
    path = tmp_path / "upload"
    path.write_text(text)
    return check_frame(read_upload(path), spec)


def test_a_value_that_is_not_a_number_names_its_column_and_row(tmp_path: Path) -> None:
    with pytest.raises(FileCheckError, match=r"column 'pre', row 3: 'n/a' is not a number") as e:
        checked(tmp_path, "variant,revenue,pre\ncontrol,1,2\ntreatment,2,3\ncontrol,3,n/a\n")
    assert (e.value.column, e.value.row) == ("pre", 3)


def test_an_empty_required_value_and_a_missing_column_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileCheckError, match=r"column 'revenue', row 2: the value is empty"):
        checked(tmp_path, "variant,revenue,pre\ncontrol,1,2\ntreatment,,3\n")
    with pytest.raises(FileCheckError, match=r"column 'pre' is not in the file"):
        checked(tmp_path, "variant,revenue\ncontrol,1\ntreatment,2\n")
    with pytest.raises(FileCheckError, match=r"row 2 \(line 3\)") as e:
        checked(tmp_path, "variant,revenue,pre\ncontrol,1,2\ntreatment,2,3,4\n")
    assert e.value.row == 2


def test_control_and_a_treatment_must_both_appear(tmp_path: Path) -> None:
    with pytest.raises(FileCheckError, match="no row has the control variant 'control'"):
        checked(tmp_path, "variant,revenue,pre\nA,1,2\nB,2,3\n")
    with pytest.raises(FileCheckError, match="a treatment too"):
        checked(tmp_path, "variant,revenue,pre\ncontrol,1,2\ncontrol,2,3\n")


def test_parquet_is_read_by_content_and_numbers_typed(tmp_path: Path) -> None:
    path = tmp_path / "no-extension"
    pd.DataFrame({"variant": ["control", "t"], "revenue": [1.0, 2.0], "pre": [3, 4]}).to_parquet(
        path
    )
    frame = check_frame(read_upload(path), VR)
    assert frame["pre"].dtype == float
    spec = SyntheticControlSpec("region", "week", "sales", "north", "3")
    panel = checked(tmp_path, "region,week,sales\nnorth,1,2\nsouth,1,3\n", spec)
    assert panel["week"].dtype.kind in "if"
    assert spec_from_dict(spec_to_dict(spec)) == spec
    assert spec_from_dict(spec_to_dict(VR)) == VR


@pytest.mark.parametrize(
    ("options", "argument", "message"),
    [
        ({"tests": {"clicks": "welch"}}, "tests", "'clicks' is not one of the metric columns"),
        ({"tests": {"revenue": "t_test"}}, "tests", "t_test"),
        ({"segment": "tenure:9,3"}, "segment", "tenure"),
        ({"segment": ":1"}, "segment", "names no attribute"),
    ],
)
def test_bad_options_name_the_option(
    options: dict[str, object], argument: str, message: str
) -> None:
    with pytest.raises(ArgumentError, match=message) as error:
        VarianceReductionSpec("variant", "control", ["revenue"], **options)  # type: ignore[arg-type]
    assert error.value.argument == argument


def test_the_options_columns_are_checked_before_the_work_is_queued(tmp_path: Path) -> None:
    spec = VarianceReductionSpec(
        "variant", "control", ["revenue"], segment="tenure:0,30", cluster_col="user",
        in_experiment_covariates=["device"],
    )  # fmt: skip
    head = "variant,revenue,tenure,user,device\n"
    with pytest.raises(FileCheckError, match=r"column 'tenure', row 2: 'long' is not a number"):
        checked(tmp_path, head + "control,1,3,u1,0.1\ntreatment,2,long,u2,0.2\n", spec)
    with pytest.raises(FileCheckError, match=r"column 'user', row 1: the value is empty"):
        checked(tmp_path, head + "control,1,3,,0.1\ntreatment,2,4,u2,0.2\n", spec)
    with pytest.raises(FileCheckError, match=r"column 'device' is not in the file"):
        checked(tmp_path, "variant,revenue,tenure,user\ncontrol,1,3,u1\ntreatment,2,4,u2\n", spec)
    frame = checked(tmp_path, head + "control,1,3,u1,0.1\ntreatment,2,4,u2,0.2\n", spec)
    assert frame["tenure"].dtype == float
    assert frame["device"].dtype == float
    assert spec_from_dict(spec_to_dict(spec)) == spec

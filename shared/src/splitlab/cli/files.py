"""Reading the data files the commands take (CSV or Parquet, chosen by extension)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (anything not named .parquet/.pq is read as CSV).

    Raises ``ValueError`` naming the file and what to give instead.
    """
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"FILE: {path} does not exist; give a CSV or Parquet file")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, ImportError) as exc:
        raise ValueError(f"FILE: {path} could not be read as CSV or Parquet ({exc})") from None

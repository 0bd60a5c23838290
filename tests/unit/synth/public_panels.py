"""Two public panels that ship inside installable packages (dev dependencies), read from their
data files through the distributions' metadata, so neither package is imported.

- Proposition 99 (Abadie, Diamond and Hainmueller 2010), in the causalpy wheel: cigarette
  sales in packs per capita, 39 states, 1970-2000, California treated from 1989.
- Texas prison construction (Cunningham's *Causal Inference: The Mixtape*, synthetic control
  chapter), in the causaldata package: Black male prisoners, 51 states (with DC), 1985-2000,
  Texas treated from 1993. Eight pre-periods and fifty donors: the panel of issue 21.

Both return long tables with the columns ``unit``, ``time`` and ``outcome``.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class PublicPanel:
    name: str
    data: pd.DataFrame
    treated: str
    intervention_time: int


def load_prop99() -> PublicPanel:
    path = importlib.metadata.distribution("causalpy").locate_file(
        "causalpy/data/california_prop99.csv"
    )
    wide = pd.read_csv(str(path))
    long = wide.melt(id_vars="Year", var_name="unit", value_name="outcome")
    return PublicPanel("Proposition 99", long.rename(columns={"Year": "time"}), "California", 1989)


def load_texas() -> PublicPanel:
    path = importlib.metadata.distribution("causaldata").locate_file("causaldata/texas/texas.dta")
    raw = pd.read_stata(str(path))
    long = raw[["state", "year", "bmprison"]].rename(
        columns={"state": "unit", "year": "time", "bmprison": "outcome"}
    )
    long["time"] = long["time"].astype(int)
    return PublicPanel("Texas prisons", long, "Texas", 1993)

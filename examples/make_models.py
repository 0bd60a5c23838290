"""Write the two ranker models the examples name (``ranker:2`` and ``ranker:3``) as .skops files.

Small scikit-learn click models on synthetic data (nothing is downloaded): the probability that
a result is clicked from its ``price`` and its ``position`` on the page, the two features of
``examples/model.yaml``. Version 3 standardises its inputs first. Run from the repository:

    .venv/bin/python examples/make_models.py            # writes examples/models/ranker-*.skops
    .venv/bin/python examples/make_models.py --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent


def training_data(n: int = 2000, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Clicks fall with price and with position (1 = top of the page)."""
    rng = np.random.default_rng(seed)
    price = rng.gamma(2.0, 10.0, size=n)
    position = rng.integers(1, 21, size=n)
    logit = 1.5 - 0.04 * price - 0.15 * position
    clicked = rng.random(n) < 1 / (1 + np.exp(-logit))
    return np.column_stack([price, position]).astype(float), clicked.astype(int)


def write_models(out: Path) -> list[Path]:
    x, y = training_data()
    models = {
        "ranker-2.skops": LogisticRegression().fit(x, y),
        "ranker-3.skops": make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(x, y),
    }
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in models.items():
        skops.io.dump(model, out / name)
        written.append(out / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "models", help="Folder to write to.")
    for path in write_models(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()

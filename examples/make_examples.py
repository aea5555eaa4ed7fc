"""Write the example CRM export and stage history the README's calibrate and backtest commands read.

A synthetic three-stage funnel (the correctly specified world of ``tests/crm_synth.py``:
25 new deals a week from 2022-01-03, each stage passed or lost after a lognormal time),
exported as a CRM would show it on 2024-12-31. Each deal has a ``Territory`` for
``--column segment=Territory``: East (about 62%), West (35%), Partners (2%, too few wins
for a funnel of its own, so calibration pools it into "other") or blank (1%), drawn
independently of everything else, so every territory has the same funnel. The files are
committed; this script says how they were made and remakes them bit for bit.

    .venv/bin/python examples/make_examples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.crm_synth import StageWorld, export_frame, history_csv  # noqa: E402

EXPORT_DATE = "2024-12-31"
SEED = 7
TERRITORIES = {"East": 0.62, "West": 0.35, "Partners": 0.02, "": 0.01}
"""Each deal's territory and its chance ("" is a blank cell)."""


def main() -> None:
    deals, history = StageWorld(start="2022-01-03").deals(EXPORT_DATE, seed=SEED)
    export = export_frame(deals, EXPORT_DATE)
    # A stream of its own (SEED's child), so the deals are those made before territories were added.
    rng = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(1,)))
    export["Territory"] = rng.choice(list(TERRITORIES), size=len(export), p=list(TERRITORIES.values()))
    export.to_csv(HERE / "deals.csv", index=False)
    history_csv(deals, history, EXPORT_DATE, path=HERE / "stages.csv")
    print(f"examples/deals.csv: {len(deals):,} deals; examples/stages.csv: stage entries, as of {EXPORT_DATE}")


if __name__ == "__main__":
    main()

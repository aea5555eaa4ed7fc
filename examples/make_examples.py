"""Write the example CRM export and stage history the README's calibrate and backtest commands read.

A synthetic three-stage funnel (the correctly specified world of ``tests/crm_synth.py``:
25 new deals a week from 2022-01-03, each stage passed or lost after a lognormal time),
exported as a CRM would show it on 2024-12-31. The files are committed; this script
says how they were made and remakes them bit for bit.

    .venv/bin/python examples/make_examples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.crm_synth import StageWorld, export_csv, history_csv  # noqa: E402

EXPORT_DATE = "2024-12-31"
SEED = 7


def main() -> None:
    deals, history = StageWorld(start="2022-01-03").deals(EXPORT_DATE, seed=SEED)
    export_csv(deals, EXPORT_DATE, path=HERE / "deals.csv")
    history_csv(deals, history, EXPORT_DATE, path=HERE / "stages.csv")
    print(f"examples/deals.csv: {len(deals):,} deals; examples/stages.csv: stage entries, as of {EXPORT_DATE}")


if __name__ == "__main__":
    main()

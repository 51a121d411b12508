"""What making each artifact cost, read from the store's run records: the one place the
run summary (`costs.csv`) and the benchmark's cost table come from."""

from __future__ import annotations

import pandas as pd

from rmc_core.stages import TRAIN_STATS
from rmc_core.store import Ref, Store

# Written by the tasks layer around every stage that really runs (a cache hit writes none).
COST = "cost"


def stage_cost_row(name: str, ref: Ref, store: Store, cached: bool) -> dict | None:
    """One stage's cost, from the records written when its artifact was computed: training
    stages report their own throughput, other stages rows / seconds; None when the
    artifact predates these records."""
    cost = store.record(ref, COST)
    trained = store.record(ref, TRAIN_STATS) if ref.kind == "model" else None
    if cost is None and trained is None:
        return None
    seconds = cost["seconds"] if cost else trained["seconds"]
    rate = trained["examples_per_s"] if trained else (cost["rows"] / seconds if cost["rows"] and seconds else None)
    peak = cost["process_peak_rss_mb"] if cost else trained.get("peak_rss_mb")
    return {"stage": name, "seconds": seconds, "examples_per_s": rate, "peak_rss_mb": peak, "cached": cached}


def cost_table(artifacts: dict[str, Ref | None], cached: list[str], store: Store) -> pd.DataFrame:
    """One row per stage of a run that left a record (a cached stage shows the cost of the
    run that computed it)."""
    rows = [row for name, ref in artifacts.items()
            if ref is not None and (row := stage_cost_row(name, ref, store, name in cached))]
    return pd.DataFrame(rows)

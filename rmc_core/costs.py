"""What making each artifact cost, read from the store's run records: the one place the
run summary (`costs.csv`) and the benchmark's cost table come from. A training's or a
prediction's row also says how far it was from this machine's limit: its MFU against a
same-dtype matmul peak (rmc_core/machine_peak.py), on real and on padded tokens."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from rmc_core.machine_peak import mfu
from rmc_core.stages import PREDICT_STATS, TRAIN_STATS
from rmc_core.store import Ref, Store

# Written by the tasks layer around every stage that really runs (a cache hit writes none).
COST = "cost"


def stage_cost_row(name: str, ref: Ref, store: Store, cached: bool,
                   peak: Callable[[str], float] | None = None) -> dict | None:
    """One stage's cost, from the records written when its artifact was computed: training
    stages report their own throughput, other stages rows / seconds; trainings and
    predictions, given `peak` (a precision's peak FLOP/s), their MFU. None when the
    artifact predates these records."""
    cost = store.record(ref, COST)
    trained = store.record(ref, TRAIN_STATS) if ref.kind == "model" else None
    if cost is None and trained is None:
        return None
    seconds = cost["seconds"] if cost else trained["seconds"]
    rate = trained["examples_per_s"] if trained else (cost["rows"] / seconds if cost["rows"] and seconds else None)
    row = {"stage": name, "seconds": seconds, "examples_per_s": rate,
           "peak_rss_mb": cost["process_peak_rss_mb"] if cost else trained.get("peak_rss_mb"), "cached": cached}
    predicted = store.record(ref, PREDICT_STATS) if ref.kind != "model" else None
    counted = trained or predicted
    if counted and counted.get("tokens") and counted["precision"] != "int8" and peak is not None:
        flops = peak(counted["precision"])
        per = {"params": counted["matmul_params"], "seconds": counted["seconds"], "peak": flops, "trained": bool(trained)}
        row |= {"precision": counted["precision"], "peak_flops": flops, "mfu": mfu(tokens=counted["tokens"], **per),
                "mfu_padded": mfu(tokens=counted["padded_tokens"], **per)}
    return row


def cost_table(artifacts: dict[str, Ref | None], cached: list[str], store: Store,
               peak: Callable[[str], float] | None = None) -> pd.DataFrame:
    """One row per stage of a run that left a record (a cached stage shows the cost of the
    run that computed it); `peak(precision)`: this machine's FLOP/s, for the trainings' MFU
    (measured where the table is made, so a cached stage's MFU is against this machine)."""
    rows = [row for name, ref in artifacts.items()
            if ref is not None and (row := stage_cost_row(name, ref, store, name in cached, peak))]
    return pd.DataFrame(rows)

"""The Python API: a run and its models from Python, through the same DAG, cache and store
as `rmc run` and the UI.

    from rmc.flows.api import run
    result = run({"task": "my_task.json", "teacher": {"source": "my-model", "fine_tuned": True}})
    result.tables["results"]            # every table of the report, as DataFrames
    result.export("imp40-rmc", "out/")  # a transformers folder with its model card

`run` refuses a bad config or input the way the CLI does (ValueError, before any compute),
then runs the Prefect flow (a temporary Prefect server is started when no PREFECT_API_URL
is set, as for `rmc run`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rmc_core import pipeline
from rmc_core.config import RunConfig
from rmc_core.devices import default_devices
from rmc_core.overrides import load_config
from rmc_core.pipeline import ModelRecord
from rmc_core.store import Ref, Store


@dataclass(frozen=True)
class RunResult:
    """A finished run: its config, store, report tables, models and how each stage ran."""

    config: RunConfig
    store: Store
    tables: dict[str, pd.DataFrame]
    models: list[ModelRecord]
    inference: pd.DataFrame | None
    computed: list[str]
    cached: list[str]

    def model(self, name: str, seed: int | None = None) -> ModelRecord:
        """A model of the run by name (`imp40-rmc`, `teacher`), the first seed's by default."""
        seed = min(m.seed for m in self.models) if seed is None else seed
        for m in self.models:
            if m.name == name and m.seed == seed:
                return m
        raise KeyError(f"no model {name!r} of seed {seed} in the run; models: {sorted({m.name for m in self.models})}")

    def export(self, name: str, out: str | Path, format: str = "hf", seed: int | None = None, replace: bool = False) -> Path:
        """The model as a transformers folder (with its model card) or an ONNX graph, written
        whole into `out` (the same rules as `rmc export --out`)."""
        return export(self.model(name, seed).model, out, self.store.root, format=format, replace=replace,
                      card=(name, self.tables, self.config.model_dump(mode="json"), self.inference))


def as_config(config: RunConfig | dict[str, Any] | str | Path | None) -> RunConfig:
    """A RunConfig from itself, a dict of fields, or a JSON config file's path."""
    if isinstance(config, RunConfig):
        return config
    if config is None or isinstance(config, dict):
        return RunConfig.model_validate(config or {})
    return load_config(Path(config))


def run(config: RunConfig | dict[str, Any] | str | Path | None = None, store: str | Path = "rmc-runs/store",
        devices: list[str] | None = None) -> RunResult:
    """Run (or resume from the store's cache) the DAG of `config` and return its results."""
    from rmc.flows.rmc_flow import RmcParameters, rmc_flow

    cfg = as_config(config)
    pipeline.preflight(cfg, Store(store), devices or default_devices(True))
    summary = rmc_flow(RmcParameters(config=cfg, store_root=str(store), devices=devices or []))
    st = Store(Path(store).resolve())
    inference = st.table(summary.inference, "inference") if summary.inference else None
    return RunResult(cfg, st, st.tables(summary.report), summary.models, inference, summary.computed, summary.cached)


def export(ref: Ref, out: str | Path, store: str | Path = "rmc-runs/store", format: str = "hf", replace: bool = False,
           card: tuple[str, dict[str, pd.DataFrame], dict[str, Any], pd.DataFrame | None] | None = None) -> Path:
    """A stored model as a transformers folder or ONNX graph in `out`; with `card` (the
    model's name in its run, the run's tables, its config and size table) a README.md model
    card beside it. Refused (ValueError, OSError) before anything is written when the
    format cannot hold the model or `out` may not be written (`check_export`)."""
    check_export(ref, out, store, format, replace)
    return write_export(ref, out, store, format, card)


def check_export(ref: Ref, out: str | Path, store: str | Path, format: str, replace: bool) -> None:
    """What `export` refuses before writing: an int8 model as a transformers folder, an
    `out` inside the store, a file, or a folder rmc did not write (unless `replace`)."""
    from rmc_core.export import refuse_format
    from rmc_core.out_folder import check_out

    st = Store(store)
    refuse_format(st.path(ref), format)
    check_out(Path(out), st.root, replace=replace)


def write_export(ref: Ref, out: str | Path, store: str | Path, format: str,
                 card: tuple[str, dict[str, pd.DataFrame], dict[str, Any], pd.DataFrame | None] | None) -> Path:
    """The export itself, once `check_export` has accepted it, written whole into `out`."""
    from rmc_core.export import export_hf, export_onnx
    from rmc_core.model_card import model_card
    from rmc_core.models import label_names_of
    from rmc_core.out_folder import written_whole

    st, out = Store(store), Path(out)
    with written_whole(out, "rmc export") as folder:
        if format == "hf":
            export_hf(st.path(ref), folder)
        else:
            export_onnx(st.path(ref), folder)
        if card is not None:
            name, tables, config, inference = card
            labels = label_names_of(str(st.path(ref))) or ()
            (folder / "README.md").write_text(model_card(name, tables, config, labels, inference))
    return out.resolve()

"""Reading one split from a file or the Hugging Face hub into the canonical frame.

The canonical split is a pandas DataFrame with columns `text_a`, `text_b`, `label` (an
integer id into the split's label names) and any metadata columns a source keeps
(heuristic, hardness, ...); a single-text task's frame has no `text_b` (its source maps
none), so that tokenizers encode one text, not a pair with an empty second half. Labels are mapped by *name*: a source declares how its raw
values spell each label, and a raw value it does not declare is an error. Label order
differs between GLUE tsv files, HF datasets and jsonl dumps, and positional mapping is the
classic way to get 6 % MNLI accuracy without noticing.
"""

from __future__ import annotations

import ast
import csv
import json
import stat
import zipfile
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
from pydantic import Field

from rmc_core.data.texts import Detokenize, detokenized
from rmc_core.schema import Frozen

CANONICAL = ("text_a", "text_b", "label")
# What every source maps: the (first) text and the label; `text_b` only for pairs.
REQUIRED = ("text_a", "label")


class DataError(ValueError):
    """The data on disk does not match what its source declares."""


class LocalSource(Frozen):
    """A split stored in local files, with explicit column and label-name mappings.

    format:
      - json_dict: one JSON object {"0": {...}, "1": {...}} (PowerfulPromptFT dumps)
      - jsonl, tsv, csv, parquet: one row per record
      - parallel_lines: `path` is a folder; `columns` maps each canonical column to a file
        with one value per line (robust-nli's s1/s2/labels)
      - arrow_stream: an Arrow IPC stream file (a `datasets.save_to_disk` shard), read
        from inside a zip archive when `member` is set
      - json: one JSON array of records
      - disk: a `datasets.save_to_disk` folder (a Dataset, or a DatasetDict with `split`)
    """

    kind: Literal["local"] = "local"
    path: str = Field(description="relative to the data root")
    format: Literal["json_dict", "json", "jsonl", "tsv", "csv", "parquet", "parallel_lines", "arrow_stream", "disk"]
    member: str | None = Field(None, description="file inside the zip archive at `path`")
    split: str | None = Field(None, description="disk: the split of a saved DatasetDict")
    columns: dict[str, str] = Field(description="canonical name -> column in the file")
    labels: dict[str, str] | None = Field(None, description="raw label value -> label name; None: raw values are names")
    header: bool = True
    names: tuple[str, ...] | None = Field(None, description="column names of a header-less file")
    quoting: Literal["minimal", "none"] = "minimal"
    decode_bytes_literals: bool = Field(False, description="texts are Python b'...' literals (PAWS-qqp)")
    detokenize: Detokenize | None = Field(None, description="texts are word-tokenized in this style: joined back to raw text")
    annotate: str | None = Field(None, description="name of a registered annotator adding metadata columns")


class HubSource(Frozen):
    """A split of a Hugging Face hub dataset (needs internet on first use)."""

    kind: Literal["hub"] = "hub"
    path: str
    name: str | None = None
    split: str
    columns: dict[str, str]
    labels: dict[str, str] | None = None
    annotate: str | None = Field(None, description="name of a registered annotator adding metadata columns "
                                                   "(may read a local file under the data root)")


Source = LocalSource | HubSource


def check_readable(path: Path, root: Path) -> None:
    """A data path that can be read to its end: a regular file, or the folder of a
    parallel-lines source. A FIFO, socket or device would block the run or never end, and
    a symlink loop is not the same fault as a missing file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data file not found: {path} (data root {root})") from err
    except OSError as err:
        raise DataError(f"data file {path} cannot be opened: {err.strerror or err}") from err
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataError(f"data file {path} is not a regular file (a FIFO, socket or device is refused: it could block "
                        "the run)")


# How each format is described in an error (the format names are the declaration's words).
FORMAT_WORDS = {"json_dict": "a JSON object of records ({\"0\": {column: value}, ...})",
                "json": "a JSON array of records", "jsonl": "JSON lines (one record per line)", "csv": "CSV",
                "tsv": "TSV (tab-separated)", "parquet": "parquet", "disk": "a datasets.save_to_disk folder",
                "arrow_stream": "an Arrow IPC stream", "parallel_lines": "parallel line files"}


def _read_table(src: LocalSource, root: Path) -> pd.DataFrame:
    """The file as read, or a DataError naming the file and, where the parser knows it, the line."""
    path = root / src.path
    check_readable(path, root)
    for name in src.columns.values() if src.format == "parallel_lines" else ():
        check_readable(path / name, root)
    try:
        frame = _parse(src, path)
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty") from err
    except (ValueError, UnicodeDecodeError, OSError, pa.ArrowException, zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{path}: cannot be read as {FORMAT_WORDS.get(src.format, src.format)}"
                        f"{f' (member {src.member})' if src.member else ''}: {err}") from err
    if frame.empty:
        raise DataError(f"{path}: the file is empty")
    return frame


def _parse(src: LocalSource, path: Path) -> pd.DataFrame:
    if src.format == "parallel_lines":
        cols = {}
        for canonical, name in src.columns.items():
            with open(path / name, encoding="utf-8") as f:
                cols[name] = f.read().splitlines()
        lengths = {name: len(v) for name, v in cols.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"{path}: parallel files differ in length: {lengths}")
        return pd.DataFrame(cols)
    if src.format == "arrow_stream":
        if src.member is None:
            return pa.ipc.open_stream(pa.memory_map(str(path))).read_all().to_pandas()
        with zipfile.ZipFile(path) as archive:
            return pa.ipc.open_stream(archive.read(src.member)).read_all().to_pandas()
    if src.format == "disk":
        import datasets

        saved = datasets.load_from_disk(str(path))
        if isinstance(saved, datasets.DatasetDict):
            if src.split not in saved:
                raise DataError(f"{path}: a DatasetDict with splits {sorted(saved)}; name one as `split`")
            saved = saved[src.split]
        return _named_labels(saved)
    if src.format == "json_dict":
        with open(path, encoding="utf-8") as f:
            return pd.DataFrame.from_dict(json.load(f), orient="index", dtype=str)
    if src.format == "json":
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise DataError(f"{path}: a json file holds one array of records ({{column: value}} objects)")
        return pd.DataFrame.from_records(records).astype(object)
    if src.format == "jsonl":
        return pd.read_json(path, lines=True, dtype=str)
    if src.format == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(
        path,
        sep="\t" if src.format == "tsv" else ",",
        header=0 if src.header else None,
        names=list(src.names) if src.names else None,
        quoting=csv.QUOTE_NONE if src.quoting == "none" else csv.QUOTE_MINIMAL,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8",
    )


def _named_labels(ds: object) -> pd.DataFrame:
    """A `datasets.Dataset` as a frame, its ClassLabel columns as their names ("-1" stays
    for "no label"): labels are mapped by name, never by position."""
    import datasets

    frame = ds.to_pandas()
    for column, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            frame[column] = [feature.int2str(int(v)) if v >= 0 else "-1" for v in frame[column]]
    return frame


def _read_hub(src: HubSource) -> pd.DataFrame:
    import datasets

    return _named_labels(datasets.load_dataset(src.path, src.name, split=src.split))


def map_labels(raw: pd.Series, labels: dict[str, str] | None, names: tuple[str, ...], where: str) -> pd.Series:
    """Raw label values -> integer ids of `names`, through the declared name mapping."""
    as_text = raw.astype(str).str.strip()
    named = as_text.map(labels) if labels is not None else as_text
    unknown = sorted(set(as_text[named.isna() | ~named.isin(names)]))
    if unknown:
        allowed = sorted(k for k, v in labels.items() if v in names) if labels is not None else list(names)
        raise DataError(f"{where}: unknown label values {unknown[:10]}; the file may hold {allowed}")
    return named.map({n: i for i, n in enumerate(names)}).astype("int64")


def refuse_blank(values: pd.Series, where: str, field: str) -> None:
    """Refuse missing or null values: `astype(str)` would turn them into the text "nan" (or a
    later stage would fail on a float with no file named)."""
    blank = values.isna().to_numpy()
    if n := int(blank.sum()):
        rows = [str(k) for k in values.index[blank][:5]]
        raise DataError(f"{where}: {n} rows with no {field} value (rows {', '.join(rows)}{', ...' if n > 5 else ''})")


def load_source(src: Source, names: tuple[str, ...], root: Path, where: str) -> pd.DataFrame:
    """Read a split and return the canonical frame, labels as ids into `names`."""
    from rmc_core.data.annotate import ANNOTATORS

    frame = _read_hub(src) if isinstance(src, HubSource) else _read_table(src, root)
    where = f"{where} ({root / src.path})" if isinstance(src, LocalSource) else f"{where} (hub {src.path}, {src.split})"
    missing = [c for c in src.columns.values() if c not in frame.columns]
    if missing or set(REQUIRED) - set(src.columns):
        raise DataError(f"{where}: missing columns {missing or sorted(set(REQUIRED) - set(src.columns))}; "
                        f"file has {list(frame.columns)[:20]}")
    texts = [c for c in ("text_a", "text_b") if c in src.columns]
    for c in (*texts, "label"):
        refuse_blank(frame[src.columns[c]], where, f"{c} ({src.columns[c]!r})")
    out = pd.DataFrame({c: frame[src.columns[c]].astype(str) for c in texts})
    if isinstance(src, LocalSource) and src.decode_bytes_literals:
        for c in texts:
            out[c] = [ast.literal_eval(v).decode("utf-8") for v in out[c]]
    if isinstance(src, LocalSource) and src.detokenize:
        for c in texts:
            out[c] = detokenized(out[c], src.detokenize)
    out["label"] = map_labels(frame[src.columns["label"]], src.labels, names, where)
    for extra, col in src.columns.items():
        if extra not in CANONICAL:
            out[extra] = frame[col].to_numpy()
    if src.annotate:
        try:
            out = ANNOTATORS[src.annotate](out, root)
        except DataError as err:
            raise DataError(f"{where}: {err}") from err
    if out.empty:
        raise DataError(f"{where}: the split is empty")
    return out.reset_index(drop=True)

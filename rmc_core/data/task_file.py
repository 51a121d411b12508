"""A task declared from files: your own classification data, with its challenge sets.

A declaration names the train and dev files and any number of OOD (challenge) sets, each a
CSV, TSV, JSONL, JSON, parquet file, a `datasets.save_to_disk` folder or a hub dataset
(`hub:owner/name`); the text column (one text) or the two text columns (pairs); the label
column and label names (declared, or read from train); for each OOD set its own labels and
where each task label counts on it (many-to-one allowed: MNLI's neutral and contradiction
both count as HANS's non-entailment); optionally a hardness column (easy/hard metrics, and
the annotated difficulty control) and OOD training rows (the upper bound, method ood-upper).

It is read by the same code as the built-in tasks: `resolve` turns it into a `TaskSpec`
whose sources are `LocalSource`s and `HubSource`s (data/sources.py). `resolve` also reads
what the DAG must know before it starts (the label names when undeclared, which files
carry the hardness column) and refuses, naming file and column, a missing column, a label
value the task does not declare and an OOD label no task label maps to: before any model
trains, and before the Prefect server starts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import ConfigDict, Field, field_validator, model_validator

from rmc_core.data.sources import DataError, HubSource, LocalSource, Source
from rmc_core.data.texts import Detokenize
from rmc_core.schema import Frozen, Real

if TYPE_CHECKING:  # the registry imports the config, which imports this module
    from rmc_core.data.registry import OodLabels, TaskSources, TaskSpec

HUB_PREFIX = "hub:"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
Format = Literal["auto", "csv", "tsv", "jsonl", "json", "json_dict", "parquet", "disk", "arrow_stream", "parallel_lines"]


class DataFile(Frozen):
    """One split's rows: a local file or folder, or a hub dataset (`hub:owner/name`)."""

    path: str = Field(description="a CSV, TSV, JSONL, JSON (array of records) or parquet file, a datasets.save_to_disk "
                                  "folder, a folder of parallel line files (format parallel_lines: `columns` names a file "
                                  "per column), or hub:owner/name (needs the hub); a relative path is relative to the "
                                  "task file, or to the folder the run starts in")
    format: Format = Field("auto", description="auto: from the file's suffix (a folder: save_to_disk)")
    split: str | None = Field(None, description="a hub dataset's split, or a split of a saved DatasetDict")
    config_name: str | None = Field(None, description="a hub dataset's configuration")
    columns: dict[str, str] | None = Field(None, description="this file's own columns, by canonical name (text_a, text_b, "
                                                             "label, and any metadata kept): where they differ from the task's")
    label_values: dict[str, str] | None = Field(None, description="raw value in this file -> label name; empty: the task's "
                                                                  "(train and dev) or the values are the names")
    header: bool = Field(True, description="CSV/TSV: the first line names the columns")
    names: tuple[str, ...] | None = Field(None, description="CSV/TSV without a header: its column names")
    quoting: Literal["minimal", "none"] = Field("minimal", description="CSV/TSV: none when quotes are part of the text")
    member: str | None = Field(None, description="a file inside the zip archive at path")
    decode_bytes_literals: bool = Field(False, description="texts are Python b'...' literals (PAWS-qqp)")
    detokenize: Detokenize | None = Field(None, description="the texts are word-tokenized (treebank: \"do n't\", \" .\", as "
                                                            "robust-nli's hard subsets): join them back to raw text")
    annotate: str | None = Field(None, description="a registered annotator adding metadata (rmc_core/data/annotate.py)")

    @property
    def on_hub(self) -> bool:
        return self.path.startswith(HUB_PREFIX)

    def resolved(self, base: Path) -> DataFile:
        """This file with its path absolute (relative paths are taken from `base`)."""
        if self.on_hub:
            return self
        return self.model_copy(update={"path": str((base / Path(self.path).expanduser()).resolve())})

    def local_format(self) -> str:
        if self.format != "auto":
            return self.format
        path = Path(self.path)
        if path.is_dir():
            return "disk"
        if path.suffix.lower() not in SUFFIX_FORMATS:
            raise ValueError(f"{self.path}: cannot tell the format from the suffix {path.suffix!r}; set format "
                             f"({', '.join(SUFFIX_FORMATS.values())} or disk)")
        return SUFFIX_FORMATS[path.suffix.lower()]


class ChallengeSet(DataFile):
    """An OOD set: its file, its own labels and where the task's labels count on it."""

    labels: tuple[str, ...] | None = Field(None, description="its label names; empty: the task's")
    label_map: dict[str, str | None] | None = Field(
        None, description="task label -> this set's label (several task labels may map to one; null: always wrong); "
                          "empty: each task label to the label of the same name")


class HubVariant(Frozen):
    """The same task's splits read from the hub (`data.source=hub`); a file of it without
    the hub: prefix is read locally, as the main declaration's are."""

    train: DataFile = Field(description="the training rows")
    dev: DataFile = Field(description="the in-distribution dev rows")
    ood: dict[str, ChallengeSet] = Field({}, description="the challenge sets, by name")
    ood_train: ChallengeSet | None = Field(None, description="OOD training rows (the upper bound)")


class FileTask(Frozen):
    """A classification task declared from files (docs/usage.md, "Your model, your data")."""

    model_config = ConfigDict(title="your task")  # its tab in the run form, beside "built-in"

    name: str = Field(description="the task's name in tables and run names (lowercase letters, digits, - and _)")
    text: str | None = Field(None, description="the text column, for one text per row (sentiment, topic, intent)")
    text_pair: tuple[str, str] | None = Field(None, description="the two text columns, for pairs (NLI, paraphrase)")
    label: str = Field("label", description="the label column")
    labels: tuple[str, ...] | None = Field(None, description="the label names in order; empty: the sorted values of "
                                                             "train's label column")
    label_values: dict[str, str] | None = Field(None, description="raw value in the files -> label name (e.g. "
                                                                  "{\"0\": \"negative\"}); empty: the values are the names")
    train: DataFile = Field(description="the training rows")
    dev: DataFile = Field(description="the in-distribution dev rows (every ID metric)")
    ood: dict[str, ChallengeSet] = Field({}, description="the challenge sets, by name")
    hardness: str | None = Field(None, description="a column marking hard rows (1/0, true/false, hard/easy) in dev, and "
                                                   "in train where it has it: easy/hard metrics, the annotated control")
    ood_train: ChallengeSet | None = Field(None, description="training rows from the OOD distribution, labelled like "
                                                             "the OOD sets: the upper bound (method ood-upper)")
    default_alpha: Real = Field(0.5, gt=0, le=1, description="RMC's alpha for this task (method.alpha overrides it)")
    bias_model: Literal["hypothesis-only", "overlap", "bag-of-words"] | None = Field(
        None, description="the known-bias methods' bias-only model; empty: bag-of-words for one text, hypothesis-only "
                          "for pairs")
    relative_to: Literal["file", "data_root"] = Field("file", description="file: relative paths are relative to the task "
                                                                          "file; data_root: to data.data_root (the "
                                                                          "built-in tasks)")
    hub: HubVariant | None = Field(None, description="the splits on the hub, read when data.source is hub")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(f"a task name is lowercase letters, digits, - and _ (at most 64), not {value!r}")
        return value

    @model_validator(mode="after")
    def _one_or_two_texts(self) -> FileTask:
        if (self.text is None) == (self.text_pair is None):
            raise ValueError("declare either text (one text per row) or text_pair (two text columns)")
        if self.labels is not None and (len(self.labels) < 2 or len(set(self.labels)) != len(self.labels)):
            raise ValueError(f"labels must name at least two distinct labels, got {list(self.labels)}")
        if set(self.ood) & {"dev", "train", "ood"} or any(not NAME.fullmatch(n) for n in self.ood):
            raise ValueError(f"OOD set names are lowercase letters, digits, - and _, and not dev, train or ood: {list(self.ood)}")
        return self

    @property
    def single_text(self) -> bool:
        return self.text is not None

    def resolved(self, base: Path) -> FileTask:
        """Every local path made absolute against `base` (the task file's folder, or the
        folder the run starts in), so that the declaration means the same files anywhere;
        a declaration relative to the data root keeps its paths."""
        if self.relative_to == "data_root":
            return self
        return self.model_copy(update={
            "train": self.train.resolved(base), "dev": self.dev.resolved(base),
            "ood": {k: v.resolved(base) for k, v in self.ood.items()},
            "ood_train": self.ood_train.resolved(base) if self.ood_train else None})

    def files(self) -> dict[str, DataFile]:
        """Every declared file by role (train, dev, ood/<name>, ood-train)."""
        return {"train": self.train, "dev": self.dev, **{f"ood/{k}": v for k, v in self.ood.items()},
                **({"ood-train": self.ood_train} if self.ood_train else {})}


def read_task_file(path: Path) -> FileTask:
    """A task file (JSON or YAML) as a declaration, its paths relative to the file's folder."""
    from rmc_core.declared_file import read_declaration

    raw = read_declaration(path, "task file")
    return FileTask.model_validate(raw).resolved(path.resolve().parent)


def _columns(task: FileTask) -> dict[str, str]:
    texts = ({"text_a": task.text} if task.single_text else {"text_a": task.text_pair[0], "text_b": task.text_pair[1]})
    return {**texts, "label": task.label}


def _source(file: DataFile, columns: dict[str, str], labels: dict[str, str] | None, hardness: bool = False) -> Source:
    """A declared file as the source the data code reads (its own columns and label values
    where it declares them)."""
    columns = dict(file.columns) if file.columns else columns
    labels = file.label_values if file.label_values is not None else labels
    annotate = file.annotate or ("hardness_column" if hardness else None)
    if file.on_hub:
        return HubSource(path=file.path.removeprefix(HUB_PREFIX), name=file.config_name, split=file.split or "train",
                         columns=columns, labels=labels, annotate=annotate)
    return LocalSource(path=file.path, format=file.local_format(), split=file.split, columns=columns, labels=labels,
                       header=file.header, names=file.names, quoting=file.quoting, member=file.member,
                       decode_bytes_literals=file.decode_bytes_literals, detokenize=file.detokenize, annotate=annotate)


def _ood_labels(task: FileTask, name: str, ood: ChallengeSet, labels: tuple[str, ...]) -> OodLabels:
    """An OOD set's labels and where each task label counts on it: every task label maps
    to one of the set's labels (or null)."""
    from rmc_core.data.registry import OodLabels

    own = ood.labels or labels
    where = f"task {task.name}, OOD set {name} ({ood.path})"
    if ood.label_map is None:
        unmapped = [n for n in labels if n not in own]
        if unmapped:
            raise ValueError(f"{where}: task labels {unmapped} have no label of the same name among its labels {list(own)}; "
                             "declare label_map (task label -> its label; null: always wrong)")
        return OodLabels(labels=tuple(own), label_map={n: n for n in labels})
    mapping = dict(ood.label_map)
    missing = [n for n in labels if n not in mapping]
    unknown = [n for n in mapping if n not in labels]
    wrong = sorted({t for t in mapping.values() if t is not None and t not in own})
    if missing or unknown or wrong:
        raise ValueError(f"{where}: label_map must map every task label {list(labels)} to one of its labels "
                         f"{list(own)} (or null); " + "; ".join(filter(None, [
                             f"unmapped: {missing}" if missing else "", f"not task labels: {unknown}" if unknown else "",
                             f"not its labels: {wrong}" if wrong else ""])))
    return OodLabels(labels=tuple(own), label_map=mapping)


def _sources(task: FileTask, files: FileTask | HubVariant, labels: dict[str, str] | None, train_hard: bool) -> TaskSources:
    from rmc_core.data.registry import TaskSources

    columns = _columns(task)
    hard = {"hardness": task.hardness} if task.hardness else {}
    return TaskSources(
        train=_source(files.train, {**columns, **(hard if train_hard else {})}, labels, train_hard),
        dev=_source(files.dev, {**columns, **hard}, labels, bool(task.hardness)),
        ood={name: _source(s, columns, None) for name, s in files.ood.items()},
        ood_train=_source(files.ood_train, columns, None) if files.ood_train else None,
        root=None if task.relative_to == "data_root" else "/",
    )


def to_spec(task: FileTask, labels: tuple[str, ...], train_hard: bool = False) -> TaskSpec:
    """The declaration as the `TaskSpec` the data code reads, its label names given (read
    no file). The OOD label set every OOD set shares (or the OOD training rows') is the
    task's default; a set with labels of its own keeps them in `ood_sets`."""
    from rmc_core.data.registry import FILES, OodLabels, TaskSpec

    ood = {name: _ood_labels(task, name, s, labels) for name, s in task.ood.items()}
    shared = {o.model_dump_json(): o for o in ood.values()}
    default = (_ood_labels(task, "ood_train", task.ood_train, labels) if task.ood_train else
               next(iter(shared.values())) if len(shared) == 1 else OodLabels(labels=labels, label_map={n: n for n in labels}))
    local = "local" if task.relative_to == "data_root" else FILES
    sources = {local: _sources(task, task, task.label_values, train_hard)}
    if task.hub is not None:
        sources["hub"] = _sources(task, task.hub, None, train_hard)
    return TaskSpec(name=task.name, labels=labels, ood_labels=default.labels, ood_label_map=default.label_map,
                    ood_sets={n: o for n, o in ood.items() if o != default}, single_text=task.single_text,
                    default_alpha=task.default_alpha, sources=sources, train_annotated=train_hard,
                    bias_model=task.bias_model or ("bag-of-words" if task.single_text else "hypothesis-only"),
                    attacked="text_a" if task.single_text else "text_b")


def _header(file: DataFile) -> list[str]:
    """The columns of a local file, read without its rows where the format allows."""
    fmt, path = file.local_format(), Path(file.path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    try:
        if fmt == "parallel_lines":  # one file per column, named by the column
            return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []
        if fmt in ("csv", "tsv"):
            if not file.header:
                return list(file.names or ())
            return list(pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", nrows=0, encoding="utf-8").columns)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if fmt == "jsonl":
            with open(path, encoding="utf-8") as f:
                first = json.loads(f.readline() or "{}")
            return list(first) if isinstance(first, dict) else []
        if fmt == "disk":
            import datasets

            saved = datasets.load_from_disk(str(path))
            if isinstance(saved, datasets.DatasetDict):
                if file.split not in saved:
                    raise DataError(f"{path}: a DatasetDict with splits {sorted(saved)}; name one as `split`")
                saved = saved[file.split]
            return list(saved.column_names)
        with open(path, encoding="utf-8") as f:  # json: an array of records
            records = json.load(f)
        return sorted({k for r in records[:100] for k in r}) if isinstance(records, list) else []
    except DataError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read as {fmt}: {str(err)[:300]}") from err


def _label_values(file: DataFile, column: str) -> list[str]:
    """The distinct values of a local file's label column, as text."""
    source = LocalSource(path=file.path, format=file.local_format(), split=file.split, columns={"label": column})
    from rmc_core.data.sources import _read_table

    frame = _read_table(source, Path("/"))
    return sorted({str(v).strip() for v in frame[column].dropna()})


def check_columns(task: FileTask) -> dict[str, list[str]]:
    """Each local file's columns, after refusing one that lacks a declared column."""
    headers = {}
    for role, file in task.files().items():
        if file.on_hub:
            continue
        header = _header(file)
        needed = list((file.columns or _columns(task)).values())
        missing = [c for c in needed if c not in header]
        if role == "dev" and task.hardness and task.hardness not in header:
            missing.append(task.hardness)
        if missing:
            raise DataError(f"task {task.name}, {role} ({file.path}): no column {', '.join(map(repr, missing))}; the file "
                            f"has {', '.join(map(repr, header[:20]))}")
        headers[role] = header
    return headers


def _names(values: list[str], mapping: dict[str, str] | None) -> list[str]:
    return [mapping.get(v, v) if mapping else v for v in values]


def resolve(task: FileTask) -> TaskSpec:
    """The declaration as a `TaskSpec`, after checking it against its files: columns, label
    values (the label names read from train when undeclared) and OOD label mappings; a
    train file with the hardness column gives `train_annotated`."""
    headers = check_columns(task)
    # The label names each local train/dev file holds, read once (through its raw-value map).
    held = {role: _held_labels(task, file, file.label_values if file.label_values is not None else task.label_values)
            for role, file in (("train", task.train), ("dev", task.dev)) if not file.on_hub}
    labels = task.labels
    if labels is None:
        if task.train.on_hub:
            raise ValueError(f"task {task.name}: declare labels (train is on the hub, so they cannot be read before the run)")
        labels = tuple(sorted(held["train"]))
        if len(labels) < 2:
            raise DataError(f"task {task.name}, train ({task.train.path}): its label column holds {len(labels)} distinct "
                            f"value(s) {list(labels)}; a classification task needs at least two")
    for role, names in held.items():
        unknown = sorted(names - set(labels))
        if unknown:
            raise DataError(f"task {task.name}, {role} ({getattr(task, role).path}): label values {unknown[:10]} are not "
                            f"among the task's labels {list(labels)} (declare them in labels, or map raw values with "
                            "label_values)")
    spec = to_spec(task, labels, bool(task.hardness) and task.hardness in headers.get("train", []))
    for name, ood in task.ood.items():
        if not ood.on_hub:
            own = spec.ood_labels_of(name)
            unknown = sorted(_held_labels(task, ood, ood.label_values) - set(own))
            if unknown:
                raise DataError(f"task {task.name}, OOD set {name} ({ood.path}): label values {unknown[:10]} are not among "
                                f"its labels {list(own)} (declare them in its labels, or map raw values with its label_values)")
    return spec


def _held_labels(task: FileTask, file: DataFile, mapping: dict[str, str] | None) -> set[str]:
    """The label names a local file holds: its label column's values through `mapping`."""
    values = _label_values(file, (file.columns or {}).get("label", task.label))
    return set(_names(values, mapping))

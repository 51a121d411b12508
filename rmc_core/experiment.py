"""Experiments: a declared grid of runs over seeds, compared arm against arm.

An experiment file (JSON or YAML) names a base run config, the arms (named sets of
overrides, and/or a grid of values per field: every arm runs at every grid point), the
seeds, and comparisons beyond each run's own (RMC against its baselines, students against
the teacher). Every arm at every grid point is a validated `RunConfig`, all of them
checked before anything runs; the runs share one store, so arms that share a teacher or
sub-networks compute them once.

Each setting is set in one place: the base holds no seeds (the experiment's own field), a
field the grid varies is not also set in the base or by an arm (an arm's settings replace
the base's: that is what an arm is). Comparisons name models by
what they are (an arm and a method, or the teacher), never by parsing a model's name.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from rmc_core.config import RunConfig
from rmc_core.declared_file import read_declaration
from rmc_core.overrides import one_line, set_path, shorten
from rmc_core.schema import Frozen, Seed

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
                            description="lower-case letters, digits, '.', '_' and '-' (it names runs and files)")]
TEACHER = "teacher"


class Arm(Frozen):
    """One variant of the base run: its name and the fields it sets (dotted paths)."""

    name: Name
    set: dict[str, Any] = Field(default_factory=dict, description="field path -> value, e.g. "
                                "{'subnetworks.estimator': 'shuffled', 'methods': ['rmc']}")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a method's student (or the teacher) of one arm; arm None:
    the arm of each run the comparison is made in."""

    arm: str | None
    model: str
    quantize: str | None = None

    @classmethod
    def parse(cls, text: str) -> Side:
        arm, _, model = text.strip().rpartition(":")
        method, plus, quantize = model.partition("+")
        if not method or (plus and not quantize):
            raise ValueError(f"{text!r} names no model (a method or 'teacher', optionally 'arm:' before it and "
                             "'+dynamic-int8' after it for the student's quantized copy)")
        if quantize and method == TEACHER:
            raise ValueError(f"{text!r}: the teacher has no quantized copy")
        return cls(arm or None, method, quantize or None)

    def __str__(self) -> str:
        model = f"{self.model}+{self.quantize}" if self.quantize else self.model
        return f"{self.arm}:{model}" if self.arm else model


def parse_comparison(text: str) -> tuple[Side, Side]:
    """`a - b`: each side a method (the student it trains) or `teacher`, with `arm:` in front
    to compare across arms (at the same grid point) and `+dynamic-int8` (the run's
    `student.quantize`) behind for the student's quantized copy."""
    parts = re.split(r"\s+-\s+", text.strip())
    if len(parts) != 2:
        raise ValueError(f"comparison {text!r} is not of the form 'a - b' (spaces around the minus)")
    a, b = (Side.parse(p) for p in parts)
    if (a.arm is None) != (b.arm is None):
        raise ValueError(f"comparison {text!r}: name the arm on both sides ('arm:method') or on neither")
    if a == b:
        raise ValueError(f"comparison {text!r} compares a model with itself")
    return a, b


@dataclass(frozen=True)
class ArmRun:
    """One run of an experiment: an arm at one grid point (field path -> value)."""

    arm: str
    point: tuple[tuple[str, Any], ...]
    config: RunConfig

    @property
    def label(self) -> str:
        return run_label(self.arm, self.point)

    @property
    def columns(self) -> dict[str, Any]:
        """The run's identity columns in every table: its arm and each grid field's value."""
        return {"arm": self.arm, **{key: _column_value(v) for key, v in self.point}}


def run_label(arm: str, point: tuple[tuple[str, Any], ...]) -> str:
    """`shuffled-synthetic_bias=0.8`: the arm and the grid values, for run names and logs."""
    return "-".join([arm, *(f"{key.rsplit('.', 1)[-1]}={_short(v)}" for key, v in point)])


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _column_value(value: Any) -> Any:
    """Scalars as they are; lists and objects as compact JSON (a table cell holds one value)."""
    return value if isinstance(value, str | int | float | bool) or value is None else _short(value)


def _given(config: dict[str, Any], key: str) -> bool:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class ExperimentConfig(Frozen):
    """A grid of runs over seeds and the comparisons between them (docs/experiments.md)."""

    name: Name = Field(description="names the experiment's runs and report")
    description: str = Field("", max_length=2000, description="what the experiment asks, for the report")
    base: dict[str, Any] = Field(default_factory=dict, description="the run config every arm starts from (the fields of "
                                 "`rmc run --config`), without seeds")
    arms: tuple[Arm, ...] = Field((Arm(name="main"),), description="named variants of the base (default: the base alone)")
    grid: dict[str, tuple[Any, ...]] = Field(default_factory=dict, description="field path -> values; every arm runs at "
                                             "every combination, e.g. {'data.synthetic_bias': [0.8, 0.9]}")
    seeds: tuple[Seed, ...] = Field(
        (0,), description="every run's seeds (paired across arms and methods: the same seed, the same rows)")
    comparisons: tuple[str, ...] = Field((), description="'a - b' beyond each run's own (RMC against its baselines, students "
                                         "against the teacher): a method or 'teacher', with 'arm:' in front across arms")
    headline: str | None = Field(None, description="the metric of the report's picture and first table (default: the "
                                 "accuracy on the task's first OOD set)")
    min_effect: float = Field(0.02, gt=0, le=1, description="the smallest difference of an accuracy worth finding (0.02: "
                              "2 points): each comparison reports the seeds that 80 % power to detect it needs")
    margin: float = Field(0.01, gt=0, le=1, description="a difference is called no effect beyond this (0.01: 1 point) "
                          "only when its interval lies inside +-margin")

    @field_validator("seeds", "arms")
    @classmethod
    def _once_each(cls, v: tuple, info: Any) -> tuple:
        keys = [a.name for a in v] if info.field_name == "arms" else list(v)
        if not keys:
            raise ValueError(f"at least one of {info.field_name} is needed")
        if len(set(keys)) != len(keys):
            raise ValueError(f"{info.field_name} listed twice: {keys}")
        return v

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid field {key!r} has no values")
            if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
                raise ValueError(f"grid field {key!r} lists a value twice: {list(values)}")
        return grid

    @model_validator(mode="after")
    def _set_in_one_place(self) -> ExperimentConfig:
        if "seeds" in self.base:
            raise ValueError("base sets seeds: an experiment's seeds are its own field (`seeds`), not its base's")
        for key in [*self.grid, *(k for a in self.arms for k in a.set)]:
            if key == "seeds" or key.startswith("seeds."):
                raise ValueError(f"{key!r} cannot vary by arm: an experiment's seeds are its own field")
        for key in self.grid:
            if _given(self.base, key):
                raise ValueError(f"{key!r} is set in base and varied by the grid (which replaces it in every run): "
                                 "set it in one place")
        for arm in self.arms:
            if both := sorted(set(arm.set) & set(self.grid)):
                raise ValueError(f"arm {arm.name!r} sets {both[0]!r}, which the grid varies: set it in one place")
        return self

    @model_validator(mode="after")
    def _runs_valid(self) -> ExperimentConfig:
        """Every run and every comparison checked before anything trains."""
        runs = self.runs()
        arms = {a.name for a in self.arms}
        for text in self.comparisons:
            a, b = parse_comparison(text)
            for side in (a, b):
                if side.arm is not None and side.arm not in arms:
                    raise ValueError(f"comparison {text!r}: no arm {side.arm!r} (arms: {', '.join(arms)})")
                if side.model != TEACHER and not any(side.model in r.config.methods and side.quantize in (
                        None, r.config.student.quantize) for r in runs if side.arm in (None, r.arm)):
                    raise ValueError(f"comparison {text!r}: no run{'' if side.arm is None else f' of arm {side.arm!r}'} "
                                     f"trains a {str(side).rpartition(':')[2]!r} student (a method or 'teacher', "
                                     "'+QUANTIZE' only where the run's student.quantize is QUANTIZE)")
        return self

    def runs(self) -> list[ArmRun]:
        """Every arm at every grid point, as a validated RunConfig with the experiment's seeds."""
        points = [tuple(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]
        out = []
        for arm, point in itertools.product(self.arms, points):
            config = json.loads(json.dumps(self.base))
            try:
                for key, value in (*arm.set.items(), *point):
                    set_path(config, key, value)
                config["seeds"] = list(self.seeds)
                out.append(ArmRun(arm.name, point, RunConfig.model_validate(config)))
            except ValidationError as err:
                raise ValueError(f"run {run_label(arm.name, point)}: {one_line(err)}") from None
            except ValueError as err:
                raise ValueError(f"run {run_label(arm.name, point)}: {shorten(str(err), 400)}") from None
        return out

    def design(self) -> dict[str, Any]:
        """The experiment without its seeds: what runs merged across seeds must share."""
        return self.model_dump(mode="json", exclude={"seeds"})


def read_experiment(path: Path, seeds: tuple[int, ...] | None = None) -> ExperimentConfig:
    """An experiment file, its relative paths (a task file, a local model, the data root)
    read from the folder the run starts in, as `rmc run --config` reads them; `seeds`
    replaces the file's."""
    raw = read_declaration(path, "experiment file")
    if seeds is not None:
        raw["seeds"] = list(seeds)
    return ExperimentConfig.model_validate(raw)

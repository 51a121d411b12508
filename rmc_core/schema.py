"""The validation rules every config object shares (see config.py for why they are strict)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, Strict, model_serializer

# Strict numbers: `batch_size=true` or `epochs="2"` is a mistake, not a 1 or a 2.
Int = Annotated[int, Strict()]
Real = Annotated[float, Strict()]
# Seeds are summed (a training's seed + the run's seed) and must stay inside numpy's seed
# range (below 2**32): each is at most 2**31 - 1, so any sum of two is.
SEED_MAX = 2**31 - 1
Sparsity = Annotated[float, Strict(), Field(gt=0.0, lt=1.0, description="fraction of pruned weights, in (0, 1)")]
# A run's seed (one branch of the DAG), as a run config, an experiment and the run form list them.
Seed = Annotated[Int, Field(ge=0, le=SEED_MAX)]


SCALARS = ("integer", "number", "string", "boolean")
# A scalar's bounds, which Prefect's UI drops from the schema it checks a field against
# (its schema mapper keeps a property's type, enum and format, but `allOf` as it is).
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "multipleOf")


def form_schema(schema: dict[str, Any]) -> None:
    """A config's JSON schema as the Prefect run form draws and checks it: optional scalars
    as plain fields (`no_null_toggles`), and every scalar's bounds inside an `allOf`
    (`bounds_kept_by_the_form`)."""
    no_null_toggles(schema)
    bounds_kept_by_the_form(schema)


def bounds_kept_by_the_form(schema: dict[str, Any]) -> None:
    """A scalar field's bounds moved into a one-item `allOf`: Prefect's UI checks each field
    against a copy of the schema without minimum, maximum and their kin, so sparsity 1.5
    passed its check and was refused only by the server, as a notice away from the field.
    The form draws a one-item `allOf` as the plain field it holds and checks the field
    against it whole, so an out-of-range value is refused at its field, in a sentence that
    gives the bound. JSON Schema reads both shapes the same."""
    for prop in schema.get("properties", {}).values():
        bounds = {k: prop.pop(k) for k in BOUNDS if k in prop}
        if bounds and prop.get("type") in SCALARS and "allOf" not in prop:
            prop["allOf"] = [{"type": prop["type"], **bounds}]
        else:
            prop.update(bounds)


def no_null_toggles(schema: dict[str, Any]) -> None:
    """An optional number, string or flag (`int | None = None`) drawn as a plain field that
    may be left empty: as `anyOf [int, null]` the Prefect form draws a type toggle and the
    line 'Property is type "None"' on every such field. Prefect's validation still accepts
    an empty (absent) value where there is no default; an optional section (a model or
    None) keeps its toggle, or the form would fill it in with its defaults."""
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf", [])
        kept = [o for o in options if o != {"type": "null"}]
        if len(options) == 2 and len(kept) == 1 and kept[0].get("type") in SCALARS:
            del prop["anyOf"]
            prop.update({k: v for k, v in kept[0].items() if k not in prop})
            if "default" in prop and prop["default"] is None:
                del prop["default"]


def without_empty_fields(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (`model` dumped) without the fields left empty (None, their default), through
    nested models: the run form draws an optional field as a plain one (`no_null_toggles`),
    and Prefect checks parameters against that form, where an empty field is absent, not
    null. Values inside plain dicts are kept as they are (a null there can mean something)."""
    out = {}
    for name, value in data.items():
        field = type(model).model_fields.get(name)
        attribute = getattr(model, name, None)
        if value is None and field is not None and field.default is None:
            continue
        if isinstance(attribute, BaseModel) and isinstance(value, dict):
            value = without_empty_fields(attribute, value)
        elif isinstance(attribute, (list, tuple)) and isinstance(value, list):
            value = [without_empty_fields(a, v) if isinstance(a, BaseModel) and isinstance(v, dict) else v
                     for a, v in zip(attribute, value)]
        out[name] = value
    return out


class Form(BaseModel):
    """A served flow's parameters as the Prefect UI draws and posts them: unknown keys
    refused, optional numbers and texts as plain fields with their bounds (`form_schema`), and a field
    left empty absent from the dump, not null (Prefect checks parameters against the form)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=form_schema)

    @model_serializer(mode="wrap")
    def _without_empty_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return without_empty_fields(self, handler(self))


class Frozen(BaseModel):
    """Immutable and strict: unknown keys are typos, and typos must not be ignored; an
    infinite or NaN number is never a setting (lr=Infinity trains to NaN and exits 0).
    Its fields are drawn in the run form as plain fields with their bounds (`form_schema`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, json_schema_extra=form_schema)

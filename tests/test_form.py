"""The Prefect run forms: every field a user can set says what it does."""

from __future__ import annotations

from typing import Any

import pytest

from rmc.flows.rmc_flow import RmcParameters
from rmc.flows.experiment_flow import ExperimentParameters


def undescribed(schema: dict[str, Any], defs: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    """Dotted paths of the properties without a description, through refs, unions and lists."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        if name in seen:
            return []
        schema, seen = defs[name], seen | {name}
    out = [p for key in ("anyOf", "oneOf", "allOf") for s in schema.get(key, []) for p in undescribed(s, defs, path, seen)]
    if isinstance(schema.get("items"), dict):
        out += undescribed(schema["items"], defs, path, seen)
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            out.append(f"{path}.{name}")
        out += undescribed(prop, defs, f"{path}.{name}", seen)
    return out


@pytest.mark.parametrize("form", [RmcParameters, ExperimentParameters])
def test_every_form_field_has_a_description(form):
    schema = form.model_json_schema()
    assert sorted(set(undescribed(schema, schema.get("$defs", {}), form.__name__, set()))) == []


def test_relative_paths_are_shown_resolved_where_the_form_is_served():
    from pathlib import Path

    schema = RmcParameters.model_json_schema()
    assert str(Path.cwd()) in schema["properties"]["store_root"]["description"]


def test_the_config_and_its_form_load_neither_torch_nor_transformers():
    """The registries hold light specs (each kind's settings in its `*_config.py`, the
    methods' losses and the evaluations' models imported where they run): validating a
    config and drawing the run form is quick and needs no torch."""
    import subprocess
    import sys

    code = ("import sys, time; t = time.perf_counter(); import rmc_core.config, rmc_core.experiment; "
            "from rmc_core.config import RunConfig; RunConfig.model_json_schema(); RunConfig(); "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)")
    seconds, torch, transformers = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                  check=True).stdout.split()
    assert (torch, transformers) == ("False", "False")
    assert float(seconds) < 6  # about 2 s here (it was 6-8 s with torch); a loaded 2-core machine is slower


def test_the_run_form_gives_back_every_shipped_run_config_unchanged():
    """The form spreads a run config over its fields and gives it back (`.config`), also
    after the round trip through the JSON Prefect stores, so cache keys see the same config."""
    from pathlib import Path

    from rmc_core.experiment import read_experiment
    from tests.conftest import REPO, tiny_run_config

    configs = [tiny_run_config(), *(r.config for f in sorted(Path(REPO / "experiments").glob("*.yaml"))
                                    for r in read_experiment(f).runs())]
    for config in configs:
        params = RmcParameters(config=config, store_root="s")
        posted = params.model_dump(mode="json")
        assert RmcParameters.model_validate(posted).config == config
        assert "None" not in str(posted["data"]) and "address" not in posted["runner"]  # empty fields are absent


def test_the_usual_fields_come_first_and_each_is_a_plain_field():
    schema = RmcParameters.model_json_schema()
    fields = schema["properties"]
    assert list(fields)[:7] == ["task", "teacher", "compression", "sparsity", "methods", "seeds", "store_root"]
    assert fields["sparsity"]["type"] == "number" and "anyOf" not in fields["sparsity"]  # no null toggle
    assert [o["title"] for o in fields["task"]["anyOf"]] == ["built-in", "your task"]  # its tabs, named for people
    assert fields["sparsity"]["allOf"] == [{"type": "number", "exclusiveMinimum": 0.0, "exclusiveMaximum": 1.0}]
    assert set(fields["compression_settings"]["properties"]) >= {"pruned", "structured", "distilled", "masked", "theseus",
                                                                 "spd"}
    assert "sparsity" not in fields["compression_settings"]["properties"]["pruned"]["properties"]  # set once, above
    data = schema["$defs"]["DataConfig"]["properties"]["max_train"]
    assert data["type"] == "integer" and "anyOf" not in data and "default" not in data


@pytest.mark.parametrize("posted, message", [
    ({"sparsity": 1.5}, "sparsity"),
    ({"compression": "structured", "sparsity": 0.3}, "sparsity applies to the kinds that have one"),
    ({"compression_settings": {"structured": {"heads": 0.5}}},
     r"compression_settings.structured is changed \(heads\) but the compression is pruned"),
    ({"compression": "spd", "compression_settings": {"spd": {"replace_rate": 2.0}}}, "replace_rate"),
    ({"compression": "nope"}, "unknown compression kind 'nope'"),
])
def test_a_bad_form_value_is_refused_naming_the_field(posted, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        RmcParameters.model_validate(posted)


# The keys of a property that Prefect 3.9's UI keeps when it checks a field (its schema
# mapper, SchemaPropertyResponse -> SchemaProperty); `allOf`, `anyOf` and `items` pass as they are.
UI_KEPT = ("$ref", "anyOf", "allOf", "const", "default", "description", "enum", "format", "items", "prefixItems",
           "properties", "required", "title", "type", "maxItems", "minItems")


def as_the_ui_checks_it(schema: dict) -> dict:
    """A schema as the Prefect UI sends it to /ui/schemas/validate (every property mapped)."""
    out = {k: v for k, v in schema.items() if k in UI_KEPT}
    if "properties" in schema:
        out["properties"] = {k: as_the_ui_checks_it(v) for k, v in schema["properties"].items()}
    return out


@pytest.mark.parametrize("name, value, message", [
    ("sparsity", 1.5, "1.5 is greater than or equal to the maximum of 1.0"),
    ("sparsity", 0, "0 is less than or equal to the minimum of 0.0"),
])
def test_the_forms_own_check_sees_a_fields_bounds(name, value, message):
    """The UI checks a field against the schema without minimum and maximum (ui-2: sparsity
    1.5 was refused only by the server, away from the field); inside `allOf` the bound
    reaches that check, which shows its sentence under the field."""
    import jsonschema

    schema = as_the_ui_checks_it(RmcParameters.model_json_schema())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors({name: value})]
    assert errors == [message]
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors({name: 0.5}))


def test_the_chosen_kinds_settings_and_the_sparsity_make_its_compression():
    params = RmcParameters.model_validate({"compression": "masked", "sparsity": 0.5,
                                           "compression_settings": {"masked": {"scenario": 2}}})
    compression = params.config.student.compression
    assert (compression.kind, compression.sparsity, compression.scenario) == ("masked", 0.5, 2)
    assert RmcParameters.model_validate({"compression": "masked"}).config.student.compression.sparsity == 0.7  # its default


def test_the_experiment_form_has_one_field_per_idea():
    """One Seeds and no Methods beside the experiment's base: the base is the run config
    every arm starts from, and an experiment's seeds are its own field only."""
    schema = ExperimentParameters.model_json_schema()
    experiment = schema["$defs"]["ExperimentConfig"]["properties"]
    assert "seeds" in experiment and "seeds" not in schema["properties"]
    assert "methods" not in experiment and experiment["base"]["type"] == "object"


def test_the_form_says_which_teacher_is_for_tests_and_why_a_cell_is_blank():
    from rmc_core.evaluation import EVALUATIONS

    assert "tiny: a random BERT for tests, which learns nothing" in RmcParameters.model_json_schema()["properties"][
        "teacher"]["description"]
    legend = next(c.legend for c in EVALUATIONS["f_bias"].columns(None) if c.name == "f_bias")
    assert "Blank for the teacher" in legend  # the legend under every summary that shows F_bias

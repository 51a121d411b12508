"""Inputs a careless user or an attacker would try, each refused where it enters, with
the file, row and field named, instead of passing on to a later stage or to wrong figures.

The hostile cases found so far live here, except those that need a served deployment or a
process group to signal, which live beside their fixtures; CASES lists every one with the
test that keeps it from coming back, and `test_every_hostile_case_has_its_test` checks
that each of those tests still exists.
"""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest

from rmc.flows import cli
from rmc.flows.rmc_flow import RmcParameters, rmc_flow
from rmc_core.data.annotate import MNLI_HARDNESS, mnli_hardness
from rmc_core.data.sources import DataError, LocalSource, load_source
from rmc_core.models import load_model, save_model, tiny_bert, train_tokenizer
from rmc_core.store import RESULT_RECORDS, Store
from tests.conftest import TINY, tiny_run_config

CASES: dict[str, str] = {
    "a pickle planted in a cached result runs code": "test_hostile_inputs::test_a_pickle_planted_in_the_store_is_never_run_and_verify_reports_it",
    "a pickled checkpoint in a stored model": "test_hostile_inputs::test_a_pickled_checkpoint_in_a_stored_model_is_refused_not_loaded",
    "verify crashes on a stray entry": "test_hostile_inputs::test_verify_reports_what_rmc_did_not_write_instead_of_crashing",
    "a served run writes or reads outside the operator's folders": "test_serve_policy::test_each_reach_outside_is_named_and_all_are_reported_together",
    "a served run escapes by .. or a symlink": "test_serve_policy::test_dot_dot_and_symlinks_do_not_escape",
    "a served run uses the hub": "test_serve_policy::test_the_hub_only_when_allowed",
    "a served run through the UI's API": "test_deployment_e2e::test_a_served_run_reaching_outside_the_operators_folders_is_refused_before_it_starts",
    "a record without text_b, a null text_a or label": "test_hostile_inputs::test_a_record_without_a_value_is_refused_naming_file_row_and_field",
    "a blank hardness annotation counted as hard": "test_hostile_inputs::test_a_blank_or_unknown_hardness_is_an_error_never_hard",
    "epochs=1e9, seed=2**70, a 2e9-position or memory-busting model": "test_hostile_inputs::test_settings_beyond_what_can_run_are_refused_up_front_on_one_line",
    "export merges into a non-empty --out, --out FILE exits 1": "test_hostile_inputs::test_export_never_merges_into_a_folder_and_refuses_with_exit_2",
    "a duplicate JSON key": "test_hostile_inputs::test_a_key_given_twice_in_a_config_is_refused",
    "a validation error over several lines": "test_hostile_inputs::test_every_validation_error_is_on_the_one_line",
    "--out half-written on a full disk": "test_hostile_inputs::test_an_output_written_whole_leaves_the_old_one_untouched_on_failure",
    "a write probe that cannot see a full disk": "test_hostile_inputs::test_the_write_probe_sees_a_full_disk",
    "--out inside the store": "test_hostile_inputs::test_a_run_refuses_an_out_inside_its_store_or_holding_it",
    "a FIFO data file hangs the run; a symlink loop called missing": "test_hostile_inputs::test_a_fifo_or_a_symlink_loop_as_data_file_is_refused_not_waited_on",
    "SIGTERM to the process group, also while the server starts": "test_faults::test_a_signal_stops_the_run_in_seconds_and_leaves_no_process",
    "a corrupt artifact is used": "test_flow::test_a_corrupt_artifact_is_quarantined_and_recomputed",
    "a truncated table passes verify": "test_flow::test_verify_reports_and_quarantines_a_truncated_table",
    "a killed run loses finished stages": "test_faults::test_a_killed_run_resumes_and_two_identical_runs_started_together_share_one_artifact_per_stage",
    "bad settings, files and config files": "test_bad_inputs::test_files_that_cannot_hold_a_run_are_refused",
    "bad config values": "test_config_errors::test_bad_config_values_are_refused",
    "a record's digest `../../../victim3` moves an outside folder into the quarantine":
        "test_hostile_inputs::test_a_record_naming_a_folder_outside_the_store_moves_nothing",
    "a digest from anywhere becomes a path unchecked": "test_hostile_inputs::test_a_digest_is_checked_before_it_becomes_a_path",
    "rmc run --out deletes what the folder held": "test_hostile_inputs::test_run_out_never_deletes_a_folder_rmc_did_not_write",
    "rmc's own outputs replaced, anything else only with --replace":
        "test_hostile_inputs::test_an_output_rmc_wrote_is_replaced_and_replace_is_the_users_word",
    "rmc speed --out overwrites a user's file": "test_hostile_inputs::test_speed_refuses_to_overwrite_a_file_it_did_not_write",
    "pickle bytes in a run record stop every later run":
        "test_hostile_inputs::test_a_pickle_in_a_run_record_is_quarantined_with_its_artifact_and_recomputed",
    "verify skips in-process/ and tmp/": "test_hostile_inputs::test_verify_looks_into_in_process_and_tmp",
    "an artifact holding another kind's contents": "test_hostile_inputs::test_an_artifact_whose_contents_are_not_its_kind_is_quarantined",
    "symlinks in the store lead outside it": "test_hostile_inputs::test_symlinks_never_lead_the_store_outside_itself",
    "a 2 GiB record read whole": "test_hostile_inputs::test_a_record_over_the_size_bound_is_refused_unread",
    "an extra column in the hardness CSV": "test_hostile_inputs::test_a_hardness_file_with_an_extra_column_is_a_data_error_naming_it",
    "JSON nested 1,000 deep in --set or 100,000 deep in --config":
        "test_hostile_inputs::test_json_nested_absurdly_deep_is_refused_on_one_line",
    "50,000 bad values printed as one 59.9 MB line": "test_hostile_inputs::test_thousands_of_bad_values_make_a_short_refusal",
    "a full store without the path": "test_hostile_inputs::test_a_full_store_names_the_path_it_could_not_write",
    "a failed flow run persisted as a pickle": "test_hostile_inputs::test_a_failed_flow_run_persists_no_pickle",
    "code from the store exported; a foreign modeling file unflagged":
        "test_structured::test_export_writes_rmcs_own_modeling_file_and_verify_flags_a_foreign_one",
    "serve outlives SIGTERM to its group": "test_faults::test_serve_stops_within_seconds_on_sigterm_to_its_group",
}


def test_every_hostile_case_has_its_test():
    import ast

    tests = Path(__file__).parent
    for case, where in CASES.items():
        module, name = where.split("::")
        defined = {n.name for n in ast.walk(ast.parse((tests / f"{module}.py").read_text())) if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"{case!r}: {where} is gone"


NLI = ("entailment", "neutral", "contradiction")
JSON_DICT = LocalSource(path="train.json", format="json_dict", columns={"text_a": "text_a", "text_b": "text_b", "label": "label"})


@pytest.mark.parametrize("record, field", [({"text_a": "a", "label": "entailment"}, "text_b"),
                                           ({"text_a": None, "text_b": "b", "label": "entailment"}, "text_a"),
                                           ({"text_a": "a", "text_b": "b", "label": None}, "label")])
def test_a_record_without_a_value_is_refused_naming_file_row_and_field(tmp_path, record, field):
    good = {"text_a": "a", "text_b": "b", "label": "entailment"}
    (tmp_path / "train.json").write_text(json.dumps({"0": good, "1": good, "7": record}))
    with pytest.raises(DataError, match=rf"train \(.*train.json\): 1 rows with no {field} \('{field}'\) value \(rows 7\)"):
        load_source(JSON_DICT, NLI, tmp_path, "train")


@pytest.fixture
def dev(tmp_path):
    """Three dev rows and their hardness file, as the shared data lays it out."""
    (tmp_path / MNLI_HARDNESS).parent.mkdir(parents=True)
    return pd.DataFrame({"text_a": ["a"] * 3, "text_b": ["b"] * 3, "label": [0, 1, 2]}), tmp_path


def test_hardness_annotations_are_read_as_written(dev):
    frame, root = dev
    (root / MNLI_HARDNESS).write_text("idx,pairID,hardness\n0,1n,1\n1,2c,0\n2,3e,1\n")
    assert mnli_hardness(frame, root)["hard"].tolist() == [True, False, True]


@pytest.mark.parametrize("value", ["", "2", "hard"])
def test_a_blank_or_unknown_hardness_is_an_error_never_hard(dev, value):
    """A blank cell read as NaN became True ("hard"): a run reported 6,663 hard rows
    instead of 4,573 without a word."""
    frame, root = dev
    (root / MNLI_HARDNESS).write_text(f"idx,pairID,hardness\n0,1n,1\n1,2c,{value}\n2,3e,0\n")
    with pytest.raises(DataError, match=rf"hardness.csv: 1 hardness values are neither 0 nor 1 \(line 3: '{value}'\)"):
        mnli_hardness(frame, root)


def test_a_blank_hardness_fails_the_real_dev_set_at_prepare_data(data_root, tmp_path):
    """The shared MNLI dev set with one hardness cell blanked: loading the task (what
    prepare-data does) fails, naming the file."""
    from rmc_core.config import DataConfig
    from rmc_core.data.registry import load_task_data

    root = tmp_path / "data"  # the shared folder, linked, with only the hardness file copied
    (root / "mnli").mkdir(parents=True)
    for entry in (data_root / "mnli").iterdir():
        (root / "mnli" / entry.name).symlink_to(entry)
    for entry in data_root.iterdir():
        if entry.name != "mnli":
            (root / entry.name).symlink_to(entry)
    path = root / MNLI_HARDNESS
    (root / "mnli" / path.parent.name).unlink()
    path.parent.mkdir()
    lines = (data_root / MNLI_HARDNESS).read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ","
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"hardness.csv: 1 hardness values are neither 0 nor 1 \(line 6: ''\)"):
        load_task_data("mnli", DataConfig(data_root=root, max_train=50))


class Payload:
    """What an attacker with write access to a shared store plants: unpickling it runs code
    (here, it creates a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return Path.touch, (self.marker,)


def plant(records: Path, marker: Path) -> int:
    """Rewrite every cached result record as Prefect's own pickle format holding the payload."""
    files = sorted(records.iterdir())
    for path in files:
        record = json.loads(path.read_text())
        record["metadata"]["serializer"] = {"type": "pickle", "picklelib": "cloudpickle"}
        record["result"] = base64.encodebytes(pickle.dumps(Payload(marker))).decode()
        path.write_text(json.dumps(record))
    return len(files)


def test_a_pickle_planted_in_the_store_is_never_run_and_verify_reports_it(finished_store, tmp_path, capsys):
    from prefect._internal.result_records import ResultRecord

    root, marker = copied(finished_store, tmp_path), tmp_path / "code-ran"
    first = finished_store[1]
    records = root / RESULT_RECORDS
    planted = plant(records, marker)
    ResultRecord.deserialize(next(records.iterdir()).read_bytes())
    assert marker.exists(), "the planted record is live: Prefect's own reader runs it"
    marker.unlink()

    again = rerun_vanilla(root)
    assert not marker.exists()
    assert {"prepare-data", "train-teacher", "evaluate-accuracy"} <= set(again.computed)
    assert again.report == first.report

    assert plant(records, marker) >= planted
    assert cli.main(["verify", "--store", str(root)]) == 1
    err = capsys.readouterr().err
    assert 'names serializer {"type": "pickle", "picklelib": "cloudpickle"}; rmc reads only \'rmc-ref\' records' in err
    assert not marker.exists() and not any(records.iterdir())
    assert cli.main(["verify", "--store", str(root)]) == 0


def test_verify_reports_what_rmc_did_not_write_instead_of_crashing(tmp_path, capsys):
    store = Store(tmp_path)
    ref = store.put_tables({"t": pd.DataFrame({"x": [1]})})
    (tmp_path / "objects" / "weights").mkdir()
    (tmp_path / "objects" / "tables" / "not-a-digest").mkdir()
    (tmp_path / "objects" / "README").write_text("hi")
    (tmp_path / "notes").write_text("hi")
    store.write_record(ref, "cost", {"seconds": 1})
    (store.path(ref) / "_run" / "evil.json").write_text("not json")
    (tmp_path / RESULT_RECORDS).mkdir()
    (tmp_path / RESULT_RECORDS / "abc").write_bytes(b"\x80\x04garbage")

    assert cli.main(["verify", "--store", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    for stray in ("objects/weights", "objects/tables/not-a-digest", "objects/README", "notes"):
        assert f"{tmp_path / stray} was not written by rmc; left in place" in err
    assert "_run/evil.json is not a JSON object; quarantined with its run records" in err
    assert f"{tmp_path / RESULT_RECORDS / 'abc'} is not an rmc result record" in err
    assert store.refs() == [], "the artifact went with its bad record: the next run recomputes both"


def test_a_pickled_checkpoint_in_a_stored_model_is_refused_not_loaded(tmp_path):
    import torch

    tokenizer = train_tokenizer(["a b c"], TINY.tiny.vocab_size)
    model = tiny_bert(TINY.tiny, 3, len(tokenizer))
    save_model(model, tokenizer, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="model.safetensors"):
        load_model(tmp_path)


def rmc(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("setting, message", [
    ("teacher_train.epochs=1e9", "teacher_train.epochs: Input should be less than or equal to 1000 (got 1000000000.0)"),
    (f"seeds=[{2**70}]", "seeds.0: Input should be less than or equal to 2147483647"),
    ("teacher_train.seed=4294967296", "teacher_train.seed: Input should be less than or equal to 2147483647"),
    ('teacher={"source":"tiny","tiny":{"max_position_embeddings":2000000000}}',
     "teacher.tiny.max_position_embeddings: Input should be less than or equal to 8192"),
    ('teacher={"source":"tiny","tiny":{"hidden_size":8192,"num_hidden_layers":96,"intermediate_size":65536}}',
     "teacher: 128,938,778,624 parameters need about 1,921 GiB to train"),  # 96 layers of 1.34e9, by hand
])
def test_settings_beyond_what_can_run_are_refused_up_front_on_one_line(tmp_path, capsys, setting, message):
    code, err = rmc(capsys, "run", "--set", setting, "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"))
    assert code == 2 and message in err
    assert err.count("\n") == 1, "one line, whatever the number of errors"
    assert not (tmp_path / "s" / "objects").exists()


def test_every_validation_error_is_on_the_one_line(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text('{"teacher_train": {"epochs": "x", "lr": -1}}')
    code, err = rmc(capsys, "run", "--config", str(config), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"))
    assert code == 2 and err == ("rmc: invalid configuration: teacher_train.epochs: Input should be a valid number (got 'x'); "
                                 "teacher_train.lr: Input should be greater than 0 (got -1)\n")


@pytest.mark.parametrize("text", ['{"seeds": [1], "seeds": [2]}', '{"teacher_train": {"epochs": 3, "epochs": 1}}'])
def test_a_key_given_twice_in_a_config_is_refused(tmp_path, capsys, text):
    config = tmp_path / "run.json"
    config.write_text(text)
    code, err = rmc(capsys, "run", "--config", str(config), "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"))
    assert code == 2 and "appears twice in one object" in err


def test_a_run_refuses_an_out_inside_its_store_or_holding_it(tmp_path, capsys):
    for out in (tmp_path / "s" / "results", tmp_path):
        code, err = rmc(capsys, "run", "--store", str(tmp_path / "s"), "--out", str(out))
        assert code == 2 and "is inside the store" in err


def test_the_memory_check_counts_a_bert_as_built():
    from rmc_core.models import encoder_config, parameter_count

    model = tiny_bert(TINY.tiny, 3, TINY.tiny.vocab_size)
    assert parameter_count(encoder_config(TINY)) == sum(p.numel() for p in model.bert.parameters())


@pytest.fixture
def stored_model(tmp_path) -> tuple[Path, str]:
    tokenizer = train_tokenizer(["a b c"], TINY.tiny.vocab_size)
    model = tiny_bert(TINY.tiny, 3, len(tokenizer))
    ref = Store(tmp_path / "store").put("model", lambda d: save_model(model, tokenizer, d))
    return tmp_path / "store", f"model/{ref.digest}"


def test_export_never_merges_into_a_folder_and_refuses_with_exit_2(stored_model, tmp_path, capsys):
    store, ref = stored_model
    out = tmp_path / "export"
    out.mkdir()
    (out / "model.onnx").write_text("another model's graph")
    code, err = rmc(capsys, "export", ref, "--store", str(store), "--out", str(out))
    assert code == 2 and "holds files rmc did not write (model.onnx)" in err and (out / "model.onnx").exists()
    (tmp_path / "file").write_text("")
    for bad, why in ((tmp_path / "file", "is a file"), (store / "objects" / "x", "is inside the store")):
        code, err = rmc(capsys, "export", ref, "--store", str(store), "--out", str(bad))
        assert code == 2 and why in err
    assert rmc(capsys, "export", ref, "--store", str(store), "--out", str(out), "--replace")[0] == 0
    assert not (out / "model.onnx").exists() and (out / "model.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export")], "no temporary folder left"


def test_an_output_written_whole_leaves_the_old_one_untouched_on_failure(tmp_path):
    from rmc_core.out_folder import written_whole

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("old")
    with pytest.raises(OSError, match="No space left"):
        with written_whole(out) as fresh:
            (fresh / "results.csv").write_text("half")
            raise OSError(28, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "results.csv").read_text() == "old"


def test_the_write_probe_sees_a_full_disk(tmp_path, monkeypatch):
    import errno
    import os

    from rmc_core.store import ensure_writable

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # a full disk refuses the probe's bytes when they reach it
    with pytest.raises(PermissionError, match="--out .* is not a writable folder: No space left on device"):
        ensure_writable(tmp_path / "out", "--out")
    assert list((tmp_path / "out").iterdir()) == [], "the probe is removed"


def test_a_fifo_or_a_symlink_loop_as_data_file_is_refused_not_waited_on(tmp_path):
    import os

    os.mkfifo(tmp_path / "train.json")
    with pytest.raises(DataError, match=r"train.json is not a regular file \(a FIFO"):
        load_source(JSON_DICT, NLI, tmp_path, "train")
    (tmp_path / "train.json").unlink()
    (tmp_path / "train.json").symlink_to(tmp_path / "train.json")
    with pytest.raises(DataError, match="Too many levels of symbolic links"):
        load_source(JSON_DICT, NLI, tmp_path, "train")


# --- reliability-3: nothing outside the store is touched, nothing a user owns is deleted ---

@pytest.fixture(scope="module")
def finished_store(prefect_api, tmp_path_factory):
    """One finished tiny run (Vanilla only): its store and summary; tests copy the store."""
    root = tmp_path_factory.mktemp("finished") / "store"
    return root, rmc_flow(RmcParameters(config=tiny_run_config(methods=("vanilla",)), store_root=str(root)))


def copied(finished_store, tmp_path) -> Path:
    import shutil

    root = tmp_path / "store"
    shutil.copytree(finished_store[0], root, symlinks=True)
    return root


def rerun_vanilla(root: Path):
    return rmc_flow(RmcParameters(config=tiny_run_config(methods=("vanilla",)), store_root=str(root)))


def rewrite_model_records(records: Path, digest: str) -> int:
    """Point the first cached result naming a model at `digest`, keeping the record's valid
    shape (one is the reproduction; each more would only retrain one more model)."""
    for path in sorted(records.iterdir()):
        record = json.loads(path.read_text())
        result = json.loads(record["result"])
        if result.get("ref", {}).get("kind") == "model":
            result["ref"]["digest"] = digest
            record["result"] = json.dumps(result)
            path.write_text(json.dumps(record))
            return 1
    return 0


def test_a_record_naming_a_folder_outside_the_store_moves_nothing(finished_store, tmp_path, capsys):
    """Reproduction: a record of the valid shape whose digest is `../../../victim3`, and that
    folder beside the store. The run once renamed the victim into its quarantine."""
    root = copied(finished_store, tmp_path)
    victim = tmp_path / "victim3"
    victim.mkdir()
    (victim / "thesis.tex").write_text("four years of work")
    assert rewrite_model_records(root / RESULT_RECORDS, "../../../victim3") > 0

    again = rerun_vanilla(root)
    assert (victim / "thesis.tex").read_text() == "four years of work"
    assert again.report == finished_store[1].report
    assert not (root / "quarantine").exists() or not any("victim" in p.name for p in (root / "quarantine").iterdir())

    rewrite_model_records(root / RESULT_RECORDS, "../../../victim3")
    assert cli.main(["verify", "--store", str(root)]) == 1
    err = capsys.readouterr().err
    assert "a digest is 64 lowercase hex characters (a sha256), not '../../../victim3'" in err
    assert (victim / "thesis.tex").exists()


@pytest.mark.parametrize("digest", ["../../../victim", "/etc", "ABC", "a" * 63, "a" * 64 + "/.."])
def test_a_digest_is_checked_before_it_becomes_a_path(tmp_path, digest):
    from pydantic import ValidationError

    from rmc.tasks.in_process import read_in_process_record
    from rmc_core.store import Ref, check_digest

    with pytest.raises(ValidationError, match="a digest is 64 lowercase hex characters"):
        Ref(kind="model", digest=digest)
    with pytest.raises(ValueError, match="a digest is 64 lowercase hex characters"):
        check_digest(digest)
    record = tmp_path / ("0" * 64 + ".json")
    record.write_text(json.dumps({"kind": "model", "digest": digest}))
    with pytest.raises(ValueError, match="a digest is 64 lowercase hex characters"):
        read_in_process_record(record)


def test_run_out_never_deletes_a_folder_rmc_did_not_write(tmp_path, capsys):
    """Reproduction: `rmc run --out .` inside a project, the store elsewhere; the run once
    exited 0 and the project's files were gone."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print('mine')")
    code, err = rmc(capsys, "run", "--store", str(tmp_path / "s"), "--out", str(project))
    assert code == 2 and "holds files rmc did not write (train.py)" in err and "--replace" in err
    assert (project / "train.py").read_text() == "print('mine')"
    assert not (tmp_path / "s" / "objects").exists(), "refused before any compute"


def test_an_output_rmc_wrote_is_replaced_and_replace_is_the_users_word(tmp_path):
    from rmc_core.out_folder import MARKER, check_out, written_whole

    out, store = tmp_path / "out", tmp_path / "store"
    with written_whole(out, "rmc run") as fresh:
        (fresh / "results.csv").write_text("new")
    assert (out / MARKER).exists()
    check_out(out, store, replace=False)  # rmc's own output: replaced without a word
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("summary.json", "results.md", "results.csv"):
        (legacy / name).write_text("{}")
    check_out(legacy, store, replace=False)  # an `rmc run` output from before the marker
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="holds files rmc did not write"):
        check_out(mine, store, replace=False)
    check_out(mine, store, replace=True)


def test_speed_refuses_to_overwrite_a_file_it_did_not_write(tmp_path, capsys):
    from rmc.benchmarks.throughput import COLUMNS
    from rmc_core.out_folder import check_out_file

    notes = tmp_path / "notes.csv"
    notes.write_text("date,weight\n2026-12-01,70\n")
    code, err = rmc(capsys, "speed", "--task", "synthetic", "--model", "tiny", "--out", str(notes))
    assert code == 2 and "is not a table this command wrote" in err
    assert notes.read_text() == "date,weight\n2026-12-01,70\n"
    earlier = tmp_path / "throughput.csv"
    earlier.write_text(",".join(COLUMNS) + "\n")
    check_out_file(earlier, COLUMNS)


def test_a_pickle_in_a_run_record_is_quarantined_with_its_artifact_and_recomputed(finished_store, tmp_path, capsys):
    """Reproduction: pickle bytes in `objects/model/*/_run/*.json` stopped every later run at
    the report with UnicodeDecodeError, and verify left the record in place."""
    root = copied(finished_store, tmp_path)
    teacher = finished_store[1].artifacts["train-teacher"]
    record = Store(root).folder("objects", "model") / teacher.digest / "_run" / "train_stats.json"
    record.write_bytes(pickle.dumps(Payload(tmp_path / "code-ran")))

    again = rerun_vanilla(root)
    assert "train-teacher" in again.computed and again.report == finished_store[1].report
    assert json.loads(record.read_text())["steps"] > 0, "recomputed with a fresh record"

    record.write_bytes(pickle.dumps(Payload(tmp_path / "code-ran")))
    assert cli.main(["verify", "--store", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"model {teacher.digest[:12]}: run record {record} is not a JSON object; quarantined with its run records" in err
    assert not record.exists() and not (tmp_path / "code-ran").exists()
    assert cli.main(["verify", "--store", str(root)]) == 0


def test_verify_looks_into_in_process_and_tmp(tmp_path, capsys):
    store = Store(tmp_path / "s")
    ref = store.put_tables({"t": pd.DataFrame({"x": [1]})})
    records = tmp_path / "s" / "in-process"
    records.mkdir()
    (records / ("a" * 64 + ".json")).write_text(ref.model_dump_json())  # a sound record
    (records / ("b" * 64 + ".json")).write_bytes(pickle.dumps(Payload(tmp_path / "code-ran")))
    (records / ("c" * 64 + ".json")).write_text(json.dumps({"kind": "model", "digest": "../../x"}))
    (records / f".{'d' * 64}.json.1234abcd").write_text("{")  # a crashed writer's temporary file
    (tmp_path / "s" / "tmp" / "0f0f").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "s" / "tmp" / "link").symlink_to(tmp_path / "outside")

    assert cli.main(["verify", "--store", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert f"{records / ('b' * 64 + '.json')} is not a stage record" in err
    assert "a digest is 64 lowercase hex characters" in err
    assert "is not named as a stage record" in err
    assert f"{tmp_path / 's' / 'tmp' / 'link'} is not a writer's folder (a link or a file); quarantined" in err
    assert "tmp/0f0f: an unfinished write" in err
    assert sorted(p.name for p in records.iterdir()) == ["a" * 64 + ".json"]
    assert (tmp_path / "outside").is_dir() and not (tmp_path / "code-ran").exists()


def test_an_artifact_whose_contents_are_not_its_kind_is_quarantined(tmp_path, capsys):
    """Reproduction: a model folder holding only `pytorch_model.bin`, and a data artifact
    placed under objects/model/, each under its correct digest: runs failed late with
    OSError, and verify called both sound."""
    import os

    import torch

    from rmc_core.store import directory_digest

    store = Store(tmp_path / "s")
    tokenizer = train_tokenizer(["a b c"], TINY.tiny.vocab_size)
    model = tiny_bert(TINY.tiny, 3, len(tokenizer))
    pickled = store.put("model", lambda d: (save_model(model, tokenizer, d), (d / "model.safetensors").unlink(),
                                            torch.save(model.state_dict(), d / "pytorch_model.bin")))
    data = store.put_tables({"train": pd.DataFrame({"text_a": ["a"]})}, kind="data", meta={"task": "synthetic"})
    misplaced = tmp_path / "s" / "objects" / "model" / data.digest
    os.rename(tmp_path / "s" / "objects" / "data" / data.digest, misplaced)
    assert directory_digest(misplaced) == data.digest

    from rmc_core import store as store_module

    store_module._verified.clear()  # as a fresh process sees them
    assert cli.main(["verify", "--store", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert f"model {pickled.digest[:12]}: holds pytorch_model.bin, a pickle file (rmc never writes or reads one)" in err
    assert f"model {data.digest[:12]}: a model artifact without config.json" in err
    assert Store(tmp_path / "s").refs() == []


def test_symlinks_never_lead_the_store_outside_itself(tmp_path, capsys):
    """Reproduction: a linked artifact folder outside the store was used as a cache hit;
    with quarantine/ or tmp/ as links, quarantined artifacts landed outside the store."""
    import shutil

    from rmc_core.store import UnsafeStore

    store = Store(tmp_path / "s")
    ref = store.put_tables({"t": pd.DataFrame({"x": [1]})})
    outside = tmp_path / "outside-artifact"
    shutil.move(tmp_path / "s" / "objects" / "tables" / ref.digest, outside)
    (tmp_path / "s" / "objects" / "tables" / ref.digest).symlink_to(outside)
    from rmc_core import store as store_module

    store_module._verified.clear()
    assert not store.exists(ref), "a linked artifact is never a cache hit"
    assert (outside / "t.parquet").exists(), "the link itself was set aside, not what it points to"
    assert [p.is_symlink() for p in (tmp_path / "s" / "quarantine").iterdir()] == [True]

    inner = store.put_tables({"u": pd.DataFrame({"x": [2]})})
    (tmp_path / "secret").write_text("x")
    (tmp_path / "s" / "objects" / "tables" / inner.digest / "v.parquet").symlink_to(tmp_path / "secret")
    store_module._verified.clear()
    assert not store.exists(inner) and (tmp_path / "secret").exists()

    for folder in ("quarantine", "tmp"):
        target = tmp_path / f"elsewhere-{folder}"
        target.mkdir()
        shutil.rmtree(tmp_path / "s" / folder, ignore_errors=True)
        (tmp_path / "s" / folder).symlink_to(target)
        with pytest.raises(UnsafeStore, match=f"{folder} is a symbolic link"):
            store.check_layout()
        code, err = rmc(capsys, "run", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"))
        assert code == 2 and f"{tmp_path / 's' / folder} is a symbolic link" in err
        code, err = rmc(capsys, "verify", "--store", str(tmp_path / "s"))
        assert code == 2 and "nothing was checked or moved" in err
        assert list(target.iterdir()) == []
        (tmp_path / "s" / folder).unlink()


def test_a_record_over_the_size_bound_is_refused_unread(tmp_path, capsys):
    """Reproduction: a 2 GiB sparse record was read whole (77 s, 2.76 GB of memory)."""
    import time

    records = tmp_path / "s" / RESULT_RECORDS
    Store(tmp_path / "s").put_tables({"t": pd.DataFrame({"x": [1]})})
    records.mkdir(parents=True)
    with open(records / "huge", "wb") as f:
        f.truncate(2 << 30)
    start = time.perf_counter()
    assert cli.main(["verify", "--store", str(tmp_path / "s")]) == 1
    assert time.perf_counter() - start < 10
    assert "holds 2,147,483,648 bytes, more than a record's 1,048,576; not read" in capsys.readouterr().err

    from rmc.tasks.result_records import RecordStorage, UnsafeRecord

    with open(records / "huge2", "wb") as f:
        f.truncate(2 << 30)
    with pytest.raises(UnsafeRecord, match="not read"):
        RecordStorage(basepath=str(records)).read_path("huge2")


def test_a_hardness_file_with_an_extra_column_is_a_data_error_naming_it(dev):
    frame, root = dev
    (root / MNLI_HARDNESS).write_text("idx,pairID,hardness\n0,1n,1\n1,2c,0,extra\n2,3e,1\n")
    with pytest.raises(DataError, match=r"hardness.csv is not a CSV of idx,pairID,hardness: Error tokenizing data.*line 3"):
        mnli_hardness(frame, root)


@pytest.mark.parametrize("where", ["set", "config"])
def test_json_nested_absurdly_deep_is_refused_on_one_line(tmp_path, capsys, where):
    depth = 1_000 if where == "set" else 100_000
    value = "[" * depth + "]" * depth
    if where == "set":
        args = ["--set", f"seeds={value}"]
    else:
        (tmp_path / "run.json").write_text('{"seeds": ' + value + "}")
        args = ["--config", str(tmp_path / "run.json")]
    code, err = rmc(capsys, "run", *args, "--store", str(tmp_path / "s"), "--out", str(tmp_path / "o"))
    assert code == 2 and "JSON nested more than 64 levels deep" in err and err.count("\n") == 1
    assert len(err) < 400


def test_thousands_of_bad_values_make_a_short_refusal(tmp_path, capsys):
    """Reproduction: a 50 MB config with 50,000 bad method names printed one 59.9 MB line."""
    (tmp_path / "run.json").write_text(json.dumps({"methods": [f"no-such-method-{i}" * 50 for i in range(50_000)]}))
    code, err = rmc(capsys, "run", "--config", str(tmp_path / "run.json"), "--store", str(tmp_path / "s"),
                    "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and len(err) < 3000
    assert "more errors" in err


def test_a_full_store_names_the_path_it_could_not_write(tmp_path, monkeypatch):
    """Reproduction: `SafetensorError: No space left on device`, with no path."""
    import errno

    from safetensors import SafetensorError

    def full(_d: Path) -> None:
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })")

    store = Store(tmp_path / "s")
    with pytest.raises(OSError, match=rf"No space left on device while writing a model artifact into {tmp_path / 's' / 'tmp'}") as err:
        store.put("model", full)
    assert err.value.errno == errno.ENOSPC
    assert list((tmp_path / "s" / "tmp").iterdir()) == []


def test_a_failed_flow_run_persists_no_pickle(prefect_api, tmp_path):
    """Prefect writes a failed flow run's exception under $PREFECT_HOME/storage whatever
    the flow's settings; by default as a pickle. Every file there must be rmc's data-only
    record."""
    import os

    from rmc.tasks.result_records import RefSerializer, check_record

    storage = Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"])
    before = set(storage.rglob("*")) if storage.exists() else set()
    bad = tiny_run_config(methods=("vanilla",), teacher=TINY.model_copy(update={"source": str(tmp_path / "no-such-model")}))
    with pytest.raises(Exception, match="does not exist"):
        rmc_flow(RmcParameters(config=bad, store_root=str(tmp_path / "s")))
    written = [p for p in set(storage.rglob("*")) - before if p.is_file()]
    assert written, "Prefect wrote the failure"
    for path in written:  # Prefect's result record, or the bare payload its storage holds beside it
        content = path.read_bytes()
        assert b"pickle" not in content, path
        failure = check_record(content, str(path)) if "metadata" in json.loads(content) else RefSerializer().loads(content)
        assert "FileNotFoundError: model directory" in str(failure) and "does not exist" in str(failure)

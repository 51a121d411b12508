"""A served run stays inside what the operator allowed: folders, clusters, the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmc_core.config import DataConfig, RunConfig
from rmc_core.model_spec import ModelSpec
from rmc_core.serve_policy import ENV, PolicyViolation, ServePolicy
from tests.conftest import tiny_run_config


@pytest.fixture
def allowed(tmp_path):
    (tmp_path / "ok" / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path, ServePolicy(roots=(tmp_path / "ok",), clusters=("ray://head:10001",))


def config(tmp_path, **overrides) -> RunConfig:
    """A task that reads files from the data root (the synthetic task reads none)."""
    return tiny_run_config(**{"task": "mnli", "data": DataConfig(data_root=tmp_path / "ok" / "data"), **overrides})


def test_a_run_inside_the_allowed_folders_passes(allowed):
    tmp, policy = allowed
    assert policy.violations(str(tmp / "ok" / "store"), config(tmp), None) == []
    assert policy.violations(str(tmp / "ok" / "store"), config(tmp), "ray://head:10001") == []


def test_each_reach_outside_is_named_and_all_are_reported_together(allowed):
    tmp, policy = allowed
    cfg = config(tmp, data=DataConfig(data_root=tmp / "outside"), teacher=ModelSpec(source=str(tmp / "outside")))
    found = policy.violations("/etc/rmc-store", cfg, "tcp://evil:8786")
    assert found == [
        f"store_root '/etc/rmc-store' is outside the allowed folders ({tmp / 'ok'})",
        "runner.address 'tcp://evil:8786' is not an allowed cluster (ray://head:10001)",
        f"config.data.data_root '{tmp / 'outside'}' is outside the allowed folders ({tmp / 'ok'})",
        f"config.teacher.source '{tmp / 'outside'}' is outside the allowed folders ({tmp / 'ok'})",
    ]
    with pytest.raises(PolicyViolation, match="refused by this server's policy"):
        policy.check("/etc/rmc-store", cfg, None)


def test_dot_dot_and_symlinks_do_not_escape(allowed):
    tmp, policy = allowed
    (tmp / "ok" / "link").symlink_to(tmp / "outside")
    for store in (str(tmp / "ok" / ".." / "outside"), str(tmp / "ok" / "link" / "store")):
        assert policy.violations(store, config(tmp), None) != []


def test_the_hub_only_when_allowed(allowed):
    tmp, policy = allowed
    cfg = config(tmp, teacher=ModelSpec(source="bert-base-uncased"), data=DataConfig(source="hub"))
    found = policy.violations(str(tmp / "ok"), cfg, None)
    assert found == ["config.data.source 'hub': the hub is not allowed here",
                     "config.teacher.source 'bert-base-uncased' is a hub model id: the hub is not allowed here"]
    assert policy.model_copy(update={"hub": True}).violations(str(tmp / "ok"), cfg, None) == []


def test_the_policy_reaches_the_flow_runs_through_the_environment_only(allowed, monkeypatch):
    tmp, policy = allowed
    monkeypatch.setenv("RMC_SERVE_POLICY", "")  # restored after the test
    assert ServePolicy.from_env() is None  # the CLI: no policy
    policy.to_env()
    assert ServePolicy.from_env() == policy


def test_serve_allows_the_runs_folder_and_the_shared_data_unless_told_otherwise(tmp_path):
    from rmc.deployments.serve import policy_from

    default = policy_from([])
    assert default.roots == (Path("rmc-runs").resolve(), Path("../shared/data").resolve())
    assert default.clusters == () and not default.hub
    told = policy_from(["--allow-root", str(tmp_path), "--allow-cluster", "tcp://dask:8786", "--allow-hub"])
    assert told == ServePolicy(roots=(tmp_path,), clusters=("tcp://dask:8786",), hub=True)


def test_served_forms_default_to_a_store_the_server_allows_and_refused_defaults_stop_serve(tmp_path, capsys):
    """`serve --allow-root DIR`: both forms (and the weekly schedule) offer a store under
    DIR; a weekly experiment whose own defaults the policy refuses stops serve before it
    serves anything, naming the deployment and what is refused."""
    from rmc.deployments.serve import deployments, policy_from, refused_defaults, serve_with, weekly_from
    from rmc.flows.experiment_flow import ExperimentParameters
    from rmc.flows.rmc_flow import RmcParameters
    from rmc_core.experiment import ExperimentConfig

    policy = policy_from(["--allow-root", str(tmp_path)])
    weekly = weekly_from(policy, [])
    assert weekly.store_root == str(tmp_path.resolve() / "store")
    served = deployments(weekly, policy)
    stores = {f"{d.flow_name}/{d.name}": d.parameters["params"]["store_root"] for d in served}
    assert set(stores.values()) == {str(tmp_path.resolve() / "store")}, stores
    assert RmcParameters.model_validate(served[0].parameters["params"]).config.task == "synthetic"
    assert refused_defaults(policy, served) == []

    base = tiny_run_config(task="mnli", data=DataConfig(data_root=tmp_path.parent / "elsewhere")).model_dump(
        mode="json", exclude={"seeds"})
    outside = ExperimentParameters(experiment=ExperimentConfig(name="weekly", base=base), store_root=weekly.store_root)
    found = refused_defaults(policy, deployments(outside, policy))
    assert found and all(line.startswith(("rmc-experiment/experiment: ", "rmc-experiment/weekly-benchmark: "))
                         for line in found)
    assert "config.data.data_root" in found[0] and "is outside the allowed folders" in found[0]
    with pytest.raises(SystemExit) as stopped:
        serve_with(policy, *deployments(outside, policy))
    assert stopped.value.code == 2 and "rmc serve: not started" in capsys.readouterr().out


def test_a_declared_tasks_files_and_task_file_stay_inside_the_allowed_folders(allowed, monkeypatch):
    import json

    from rmc_core.data.task_file import FileTask

    tmp, policy = allowed
    for name in ("train.csv", "dev.csv"):
        (tmp / "outside" / name).write_text("text,label\na,x\nb,y\n")
    task = FileTask.model_validate({"name": "mine", "text": "text", "train": {"path": str(tmp / "outside" / "train.csv")},
                                    "dev": {"path": str(tmp / "ok" / "dev.csv")},
                                    "ood": {"hubset": {"path": "hub:someone/set", "split": "test"}}})
    found = policy.violations(str(tmp / "ok"), config(tmp, data=DataConfig(), task=task), None)
    assert found == [f"config.task.train.path '{tmp / 'outside' / 'train.csv'}' is outside the allowed folders ({tmp / 'ok'})",
                     "config.task.ood.hubset.path 'hub:someone/set': the hub is not allowed here"]
    (tmp / "outside" / "task.json").write_text(json.dumps(task.model_dump(mode="json")))
    monkeypatch.setenv(ENV, policy.model_dump_json())
    with pytest.raises(ValueError, match="task file .* is outside the folders this server allows"):
        RunConfig(task=str(tmp / "outside" / "task.json"))


def test_the_run_form_takes_a_declared_task_as_the_ui_posts_it(allowed):
    """The UI posts the run's parameters as JSON: a declaration object, or a task file's
    path, is a task like a built-in name; its files are then checked like every path."""
    import json

    from rmc.flows.rmc_flow import RmcParameters

    tmp, policy = allowed
    for name in ("train.csv", "dev.csv"):
        (tmp / "ok" / name).write_text("text,label\na,x\nb,y\n")
    declared = {"name": "mine", "text": "text", "train": {"path": str(tmp / "ok" / "train.csv")},
                "dev": {"path": str(tmp / "ok" / "dev.csv")}}
    (tmp / "ok" / "task.json").write_text(json.dumps(declared))
    for task in (declared, str(tmp / "ok" / "task.json")):
        params = RmcParameters.model_validate_json(json.dumps({"task": task, "store_root": str(tmp / "ok" / "s")}))
        assert params.config.task_name == "mine"
        assert policy.violations(params.store_root, params.config, None) == []
    schema = RmcParameters.model_json_schema()
    assert "FileTask" in schema["$defs"] and "description" in schema["$defs"]["FileTask"]["properties"]["train"]

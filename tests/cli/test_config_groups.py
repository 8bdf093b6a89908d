"""The config groups of the command line: a task's env file chosen by ``env_id``, ``dynamics=learned|oracle``,
planners (and the heuristic baseline) with one shape, ``planner.cfg.<field>`` reaching the planner, and
recipes whose shared blocks expand to the commands they held before."""

import json
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from hydra.errors import HydraException
from omegaconf import OmegaConf

from worldmodel.cli.jobs.eval import make_dynamics, make_policy, planner_config, planner_kind
from worldmodel.cli.jobs.reproduce import available_recipes, find_recipe, recipe_commands
from worldmodel.cli.main import compose_config, main
from worldmodel.cli.options import task_env, task_ids

CONF = Path(__file__).resolve().parents[2] / "worldmodel" / "cli" / "conf"
BEFORE = Path(__file__).parent / "data" / "recipe_commands.json"  # the expansion of the recipes before `shared`


@pytest.fixture(scope="module")
def hand_env():
    """A cheap PushT4D-v0 env (floating hand, state observations) for building dynamics and planners."""
    env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="state")
    yield env
    env.close()


def test_env_id_loads_the_task_file_under_the_command_line():
    assert task_ids() == ["Poke4D-v0", "Push4D-v0", "PushT4D-v0"]
    poke = OmegaConf.to_container(compose_config("eval", ["env_id=Poke4D-v0"]).env)
    assert poke == {"task": "reach", "shape": "rod", "robot": "panda_hand", "obs_mode": "pointcloud"}
    pusht = compose_config("eval").env  # eval's own PushT4D-v0 defaults: short goals, panda, mujoco, point clouds
    assert (pusht.robot, pusht.backend, pusht.start, pusht.obs_mode) == ("panda", "mujoco", "near_goal", "pointcloud")
    assert compose_config("collect").env.start == "full"  # the task's kwargs without eval's entry
    assert OmegaConf.to_container(compose_config("collect", ["env_id=Poke4D-v0"]).env) == poke
    cfg = compose_config("eval", ["env.robot=panda_hand", "env.num_cameras=1", "env_id=Poke4D-v0", "~env.shape",
                                  "env.robot=panda"])
    assert cfg.env.robot == "panda" and cfg.env.num_cameras == 1 and "shape" not in cfg.env  # the last one wins
    assert OmegaConf.to_container(compose_config("collect", ["env_id=Nope-v0"]).env) == {}  # the job reports it
    assert task_env("collect", "../eval") is None  # env_id names only a task file


def test_task_files_list_the_envs_own_defaults():
    from worldmodel.data.recorder import resolved_env_kwargs

    for env_id in task_ids():
        text = (CONF / "env" / f"{env_id}.yaml").read_text()
        assert "source of truth" in text  # the header says whose defaults win
        kwargs = yaml.safe_load(text)["kwargs"]
        env = gym.make(env_id)
        try:
            resolved = resolved_env_kwargs(env)
        finally:
            env.close()
        assert {k: resolved[k] for k in kwargs} == kwargs, env_id


def test_unknown_env_id_is_one_line_listing_the_tasks(tmp_path, capsys):
    code = main(["eval", "env_id=Nope-v0", "planner=heuristic", "episodes=1", f"out={tmp_path / 'o'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("wm4d eval: error: unknown env_id 'Nope-v0'; worldmodel4d's tasks:")
    assert "PushT4D-v0" in err[-1] and "Poke4D-v0" in err[-1] and not (tmp_path / "o").exists()


def test_eval_refuses_a_task_without_a_goal_coverage_in_one_line(tmp_path, capsys):
    code = main(["eval", "env_id=Poke4D-v0", "planner=heuristic", "episodes=1", f"out={tmp_path / 'o'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("wm4d eval: error: wm4d eval scores pushing tasks") and len(err) == 1
    assert not (tmp_path / "o").exists()


def test_dynamics_group_builds_the_oracle_and_the_learned_model(hand_env):
    from policies.dynamics import OracleDynamics
    from worldmodel.dynamics import LearnedDynamics

    oracle = make_dynamics(compose_config("eval", ["dynamics=oracle"]), hand_env)
    assert isinstance(oracle, OracleDynamics)
    learned = make_dynamics(compose_config("eval", ["dynamics=learned", "checkpoint=pusht4d-pointflow"]), hand_env)
    assert isinstance(learned, LearnedDynamics)
    assert learned.max_step == pytest.approx(hand_env.unwrapped.robot.model.max_speed * learned.dt)
    assert compose_config("eval", ["checkpoint=/some/run"]).dynamics.checkpoint == "/some/run"
    with pytest.raises(HydraException, match="dynamics"):
        compose_config("eval", ["dynamics=bogus"])


def test_planner_cfg_overrides_reach_the_planner(hand_env):
    mppi = make_policy(compose_config("eval", ["planner=mppi", "dynamics=oracle", "planner.cfg.samples=12",
                                               "planner.cfg.temperature=0.1"]), hand_env, seed=0)
    assert mppi.planner.cfg.samples == 12 and mppi.planner.cfg.temperature == 0.1
    cem = make_policy(compose_config("eval", ["planner=cem", "dynamics=oracle", "planner.cfg.samples=9"]), hand_env, 0)
    assert type(cem.planner).__name__ == "CEM" and cem.planner.cfg.samples == 9
    primitive = make_policy(compose_config("eval", ["dynamics=oracle", "planner.cfg.samples=9",
                                                    "planner.cfg.prior_samples=0"]), hand_env, 0)
    assert type(primitive).__name__ == "PrimitiveMPC" and primitive.cfg.samples == 9
    assert primitive.cfg.prior_samples == 0


def test_heuristic_is_a_policy_run_as_the_baseline(hand_env):
    cfg = compose_config("eval", ["planner=heuristic", "planner.cfg.max_length=0.05", "checkpoint=/no/such/dir"])
    assert planner_kind(cfg) == "policy" and "kind" not in planner_config(cfg)
    policy = make_policy(cfg, hand_env, 0)  # no dynamics model: the checkpoint is never read
    assert type(policy).__name__ == "HeuristicPushPolicy" and policy.max_length == 0.05
    with pytest.raises(ValueError, match="is not allowed"):  # a policy is not a planner, nor the reverse
        make_policy(compose_config("eval", ["planner=heuristic", "planner.kind=planner"]), hand_env, 0)
    with pytest.raises(ValueError, match="is not allowed"):
        make_policy(compose_config("eval", ["planner=cem", "planner.kind=policy"]), hand_env, 0)
    with pytest.raises(ValueError, match="planner.kind must be one of"):
        planner_kind(compose_config("eval", ["planner.kind=oracle"]))


def test_planner_files_share_one_shape():
    for path in sorted((CONF / "planner").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        assert list(node) == ["kind", "_target_", "cfg"], path.name
        assert node["kind"] in ("planner", "policy") and isinstance(node["cfg"], dict), path.name
        assert ("_target_" in node["cfg"]) == (node["kind"] == "planner"), path.name  # a planner's settings class


def test_help_shows_the_chosen_task_and_groups():
    from worldmodel.cli.options import job_help

    overrides = ["env_id=Poke4D-v0", "planner=cem", "dynamics=oracle"]
    text = job_help("eval", compose_config("eval", overrides), overrides)
    assert "env.shape=rod" in text and "# rod | stem (with a head) | plate" in text and "env.start" not in text
    assert "dynamics=oracle    choices: learned, oracle" in text and "planner=cem" in text
    assert "planner.cfg.samples=64" in text and "# candidate plans per iteration" in text


@pytest.mark.parametrize("name", available_recipes())
def test_recipes_compose_the_configs_they_held_before_shared_blocks_and_experiments(name, tmp_path):
    before = json.loads(BEFORE.read_text())[name]
    path, _ = find_recipe(name)
    after = recipe_commands(yaml.safe_load(path.read_text()), "{out}")
    assert list(after) == list(before)
    for stage, commands in before.items():
        assert [job for job, _ in after[stage]] == [job for job, _ in commands], stage
        for (job, old), (_, new) in zip(commands, after[stage], strict=True):
            assert len(set(new)) == len(new), (stage, new)  # the same config, from shared blocks and experiments
            fill = [o.replace("{out}", str(tmp_path)) for o in old], [o.replace("{out}", str(tmp_path)) for o in new]
            assert compose_config(job, fill[1]) == compose_config(job, fill[0]), (stage, new)


def test_recipe_shared_blocks():
    recipe = {"shared": {"collect": ["policy=heuristic", "max_steps=5", "out={out}/x"]},
              "collect": [["seed=1", "max_steps=6"]], "eval_collect": [["~max_steps"]],
              "train": ["out={out}/t"], "eval": ["out={out}/e"]}
    commands = recipe_commands(recipe, "R")
    assert commands["collect"] == [("collect", ["policy=heuristic", "out=R/x", "seed=1", "max_steps=6", "resume=true"]),
                                   ("collect", ["policy=heuristic", "out=R/x", "~max_steps", "resume=true"])]
    with pytest.raises(ValueError, match="shared maps job names"):
        recipe_commands({**recipe, "shared": {"eval": ["x=1"]}}, "R")
    with pytest.raises(ValueError, match="list of key=value overrides"):
        recipe_commands({**recipe, "shared": {"train": "model=pointnet"}}, "R")

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from t2l_fast.cli import main
from t2l_fast.data.synthetic import SynthConfig, write_synthetic_dataset
from t2l_fast.training.config import ConfigError, load_config
from t2l_fast.training.resume import STATE_FILE, TrainingError
from t2l_fast.training.schedule import lr_factor
from t2l_fast.training.trainer import Trainer

CONFIGS = Path(__file__).parents[1] / "train" / "configs"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, SynthConfig(classes=("growing", "shrinking", "fading in", "fading out"),
                                              clips_per_class=6, eval_clips_per_class=1))
    return root


def settings(data, out, *extra):
    """Overrides of a tiny run on the CPU (the GPU twins append device=cuda: a later override wins)."""
    return ["device=cpu", f"data.root={data}", f"data.train_list={data / 'train.txt'}",
            f"data.classes={data / 'classes.txt'}", f"data.descriptions={data / 'descriptions.csv'}",
            f"output_dir={out}", "model=t2l_tiny",
            "batch_size=4", "epochs=2", "precision=fp32", "data.backend=pyav", "data.num_workers=0",
            "data.flip=false", "optim.lr=5e-3", "optim.warmup_epochs=0.5", *extra]


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_validates(name, data, tmp_path):
    config = load_config(str(CONFIGS / name), [f"data.root={data}", f"data.train_list={data / 'train.txt'}",
                                               f"data.classes={data / 'classes.txt'}",
                                               f"data.descriptions={data / 'descriptions.csv'}",
                                               f"data.val_list={data / 'val.txt'}", f"output_dir={tmp_path}"])
    assert config.frames >= 1 and config.optim.lr > 0


@pytest.mark.parametrize("override, match", [
    ("framez=4", "unknown key 'framez'; did you mean 'frames'"),
    ("optim.learning_rate=1", "optim.learning_rate: unknown key 'learning_rate'"),
    ("frames=0", "frames must be >= 1"),
    ("batch_size=-2", "batch_size must be >= 1"),
    ("precision=fp8", "precision must be"),
    ("frames=eight", "frames = 'eight' is not a valid int"),
    ("data.train_list=/no/such/list.txt", "data.train_list: /no/such/list.txt does not exist"),
    ("optim.lr=nan", "--set optim.lr: lr = 'nan' is not a valid float \\(not a finite number\\)"),
    ("optim.lr=inf", "not a finite number"),
    ("tfd_weight=nan", "tfd_weight = 'nan' is not a valid float"),  # every number, not only the optimiser's
    ("optim.betas=[0.9,nan]", "not a finite number"),
    ("optim.lr=1e400", "not a finite number"),
    ("label_smoothing=-5", "label_smoothing must be in \\[0, 1\\), got -5"),
    ("max_bad_steps=-3", "max_bad_steps must be >= 1"),
    ("data.num_workers=-1", "data.num_workers must be >= 0"),
    ("max_steps=-5", "max_steps must be >= 0"),
    ("optim.min_lr_ratio=2", "min_lr_ratio in \\[0, 1\\]"),
    ("optim.token_lr_scale=0", "optim.token_lr_scale must be > 0, got 0"),
    ("global_batch_size=6", "global_batch_size 6 is not a multiple of 1 process\\(es\\) x batch_size 4"),
    ("global_batch_size=8", "needs 2 accumulated micro-batches, which t2l's in-batch loss cannot use.*Run 2 processes"),
])
def test_config_errors_name_the_key(data, tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, settings(data, tmp_path) + [override])


def test_twin_batches_need_an_even_batch_and_twins_next_to_each_other(data, tmp_path):
    with pytest.raises(ConfigError, match="data.twin_batches needs an even batch_size .*got 5"):
        load_config(None, settings(data, tmp_path, "data.twin_batches=true", "batch_size=5"))
    names = (data / "classes.txt").read_text().split("\n")
    names[1], names[2] = names[2], names[1]  # a twin pair split apart
    (tmp_path / "classes.txt").write_text("\n".join(names))
    config = load_config(None, settings(data, tmp_path / "out", "data.twin_batches=true",
                                        f"data.classes={tmp_path / 'classes.txt'}"))
    with pytest.raises(TrainingError, match=r"classes.txt: data.twin_batches pairs labels 2k and 2k \+ 1, and "
                                            r"class 0 'growing' would be paired with 'fading in', but its twin is"):
        Trainer(config)


def test_unwritable_output_folder_fails_at_startup(data, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot write there"):
        load_config(None, settings(data, tmp_path / "file" / "out"))


def test_schedule_warms_up_then_decays():
    assert lr_factor(0, 10, 100, 0.0) == 0 and lr_factor(5, 10, 100, 0.0) == 0.5
    assert lr_factor(10, 10, 100, 0.0) == 1.0 and lr_factor(100, 10, 100, 0.01) == pytest.approx(0.01)
    assert lr_factor(55, 10, 100, 0.0) == pytest.approx(0.5)


def test_temporal_tokens_get_their_own_learning_rate_only_when_scaled(data, tmp_path):
    trainer = Trainer(load_config(None, settings(data, tmp_path / "scaled", "optim.token_lr_scale=5",
                                                 "optim.warmup_epochs=0")))
    tokens, rest = trainer.optimizer.param_groups[1], trainer.optimizer.param_groups[0]
    assert tokens["params"] == [trainer.model.temporal_tokens] and len(rest["params"]) > 10
    assert tokens["lr"] == pytest.approx(5 * rest["lr"]) and rest["lr"] == pytest.approx(5e-3)
    plain = Trainer(load_config(None, settings(data, tmp_path / "plain")))
    assert len(plain.optimizer.param_groups) == 1  # the paper's recipe: one learning rate


def test_vificlip_schedule_is_timms_cosine_without_warmup_prefix():
    scheduler_module = pytest.importorskip("timm.scheduler.cosine_lr", reason="timm (open_clip's dependency)")
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=8e-6)
    timm = scheduler_module.CosineLRScheduler(optimizer, t_initial=100, lr_min=8e-8, warmup_lr_init=0, warmup_t=10,
                                              cycle_limit=1, t_in_epochs=False)  # ViFi-CLIP's build_scheduler
    for step in (0, 3, 9, 10, 11, 40, 55, 99):
        assert 8e-6 * lr_factor(step, 10, 100, 0.01, warmup_prefix=False) == pytest.approx(
            timm._get_lr(step)[0], rel=1e-9, abs=1e-15), step
    assert lr_factor(55, 10, 100, 0.0, warmup_prefix=False) < lr_factor(55, 10, 100, 0.0)  # less lr mid-run


def losses(out: Path):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_resume_mid_epoch_reproduces_the_uninterrupted_run(data, tmp_path, device):
    """Dropout, drop-path and token dropout on (the model's defaults): their masks come back with the RNG states."""
    run = [f"device={device}"]
    full = Trainer(load_config(None, settings(data, tmp_path / "full", *run)))
    full.run()
    reference = losses(tmp_path / "full")
    assert len(reference) == 2 * full.steps_per_epoch == 12
    first = Trainer(load_config(None, settings(data, tmp_path / "cut", "max_steps=9", *run)))
    first.run()  # stops mid-epoch 2 and saves
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as log:  # steps logged after the save, then a kill
        log.write(json.dumps({"step": 10, "epoch": 1, "loss": 99.0}) + "\n")
    second = Trainer(load_config(None, settings(data, tmp_path / "cut", *run)))
    second.resume(tmp_path / "cut" / STATE_FILE)
    assert (second.epoch, second.step_in_epoch) == (1, 3)
    second.run()
    if device == "cpu":
        assert losses(tmp_path / "cut") == reference  # bit-identical on the same machine
    else:  # CUDA kernels may reduce in another order from run to run; a wrong dropout mask moves far more
        assert losses(tmp_path / "cut") == pytest.approx(reference, rel=1e-4)


def test_random_states_round_trip_including_every_gpus(monkeypatch, tmp_path):
    """torch, numpy, Python and (where CUDA is) each GPU's generator: what was saved is what is restored."""
    import random

    import numpy as np

    from t2l_fast.training.resume import restore_rng, rng_state

    gpu_states = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3, 4], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: gpu_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)  # this process trained on the second GPU
    saved = rng_state()
    torch.save([saved], tmp_path / "state.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(torch.load(tmp_path / "state.pt", weights_only=True), 0, 1, tmp_path / "state.pt")
    assert torch.equal(torch.rand(3), expected[0]) and (np.random.rand(3) == expected[1]).all()
    assert random.random() == expected[2]
    assert [state.tolist() for state in restored] == [[1, 2], [3, 4]]
    one_gpu = []  # resumed with one GPU visible per process: the trained-on GPU's generator goes onto it
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", one_gpu.append)
    restore_rng([saved], 0, 1, tmp_path / "state.pt")
    assert [state.tolist() for state in one_gpu] == [[3, 4]]
    with pytest.warns(UserWarning, match="saved the random states of 2 GPU"):
        restore_rng([{**saved, "cuda_device": None}], 0, 1, tmp_path / "state.pt")  # a state from before


def test_non_finite_losses_are_skipped_then_stop(data, tmp_path, monkeypatch):
    trainer = Trainer(load_config(None, settings(data, tmp_path, "max_bad_steps=3")))
    real = trainer.compute_loss
    calls = {"n": 0}

    def sometimes_nan(batch):
        calls["n"] += 1
        result = real(batch)
        if calls["n"] >= 3:
            result["loss"] = result["loss"] * float("nan")
        return result

    monkeypatch.setattr(trainer, "compute_loss", sometimes_nan)
    before = {k: v.clone() for k, v in trainer.model.named_learnable_parameters()}
    with pytest.raises(TrainingError, match="3 consecutive steps had a non-finite loss"):
        trainer.run()
    state = torch.load(tmp_path / STATE_FILE, weights_only=True) if (tmp_path / STATE_FILE).exists() else None
    assert state is None or all(torch.isfinite(v).all() for v in state["model"].values())
    changed = any(not torch.equal(before[k], v) for k, v in trainer.model.named_learnable_parameters())
    assert changed and all(torch.isfinite(v).all() for v in trainer.model.learnable_parameters())


def test_sigterm_saves_and_exits_143(data, tmp_path):
    args = settings(data, tmp_path, "epochs=50")
    command = [sys.executable, "-m", "t2l_fast.cli", "train", *sum((["--set", a] for a in args), [])]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 120
    while not (tmp_path / "metrics.jsonl").exists() or not (tmp_path / "metrics.jsonl").read_text():
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    message = process.stderr.read()
    assert "SIGTERM at step" in message and f"--resume {tmp_path / STATE_FILE}" in message, message
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["global_step"] >= 1 and not math.isnan(losses(tmp_path)[-1])


def test_train_command_writes_model_config_and_summary(data, tmp_path, capsys):
    assert main(["train", *sum((["--set", a] for a in settings(data, tmp_path, "epochs=1")), [])]) == 0
    assert "trained 6 steps" in capsys.readouterr().out
    for name in ("config.yaml", "metrics.jsonl", "summary.json", STATE_FILE, "model/config.json"):
        assert (tmp_path / name).exists(), name


def test_vificlip_objective_trains_the_backbone_but_not_the_token_embedding(data, tmp_path):
    (tmp_path / ".last.pt.k3j2.tmp").write_bytes(b"half a checkpoint")  # a write a kill interrupted
    trainer = Trainer(load_config(None, settings(data, tmp_path, "model=vificlip_tiny", "objective=vificlip",
                                                 "max_steps=2", "data.descriptions=")))
    token_embedding = trainer.model.backbone.token_embedding.weight.clone()
    visual = trainer.model.backbone.visual.proj.detach().clone()
    summary = trainer.run()
    assert summary["steps"] == 2 and math.isfinite(summary["last"]["ce"])
    assert not list(tmp_path.rglob(".*.tmp"))  # cleaned at the start
    assert torch.equal(trainer.model.backbone.token_embedding.weight, token_embedding)
    assert not torch.equal(trainer.model.backbone.visual.proj, visual)


@pytest.mark.parametrize("classes", ["all", "batch"])
def test_vificlip_loss_scores_every_class_prompt_with_smoothing_over_all(data, tmp_path, classes):
    from t2l_fast import normalize_video
    from t2l_fast.training.losses import smoothed_targets, soft_cross_entropy

    trainer = Trainer(load_config(None, settings(data, tmp_path, "model=vificlip_tiny", "objective=vificlip",
                                                 "mixup_alpha=0", "cutmix_alpha=0", "precision=fp32",
                                                 f"vificlip_classes={classes}", "data.descriptions=")))
    batch = next(iter(trainer.loader))
    labels = batch["label"]
    with torch.no_grad():
        loss = trainer.compute_loss(batch)["loss"]
        videos = trainer.model.encode_video(normalize_video(batch["video"], trainer.model.input_spec))
        prompts = torch.arange(len(trainer.class_tokens)) if classes == "all" else labels.unique()
        texts = trainer.model.encode_text(trainer.class_tokens[prompts])
        index = labels if classes == "all" else torch.searchsorted(prompts, labels)
        expected = soft_cross_entropy(trainer.model.logit_scale() * videos @ texts.t(),
                                      smoothed_targets(index, len(prompts), 0.1))
    assert len(prompts) == (len(trainer.class_tokens) if classes == "all" else len(labels.unique()))
    torch.testing.assert_close(loss, expected)


def test_validation_keeps_the_best_model_and_logs_val_scores(data, tmp_path):
    trainer = Trainer(load_config(None, settings(data, tmp_path, f"data.val_list={data / 'val.txt'}")))
    summary = trainer.run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [row for row in rows if "val_top1" in row]
    assert len(val) == 2 and summary["best_val_top1"] == max(row["val_top1"] for row in val)
    best = json.loads((tmp_path / "best" / "config.json").read_text())
    assert best["val_top1"] == summary["best_val_top1"]
    assert torch.load(tmp_path / STATE_FILE, weights_only=True)["best_top1"] == summary["best_val_top1"]


def test_validation_every_n_epochs_and_after_the_last(data, tmp_path):
    every = settings(data, tmp_path, f"data.val_list={data / 'val.txt'}", "epochs=3")
    Trainer(load_config(None, [*every, "data.val_every_epochs=2"])).run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if "val_top1" in row] == [1, 2]  # after the 2nd and the last (3rd)
    with pytest.raises(ConfigError, match="data.val_every_epochs must be >= 1, got 0"):
        Trainer(load_config(None, [*every, "data.val_every_epochs=0"]))


def test_tensorboard_scalars_when_installed(data, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (optional)")
    Trainer(load_config(None, settings(data, tmp_path, "max_steps=2"))).run()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_out_of_memory_saves_and_suggests_a_smaller_batch(data, tmp_path, monkeypatch):
    trainer = Trainer(load_config(None, settings(data, tmp_path)))
    real, calls = trainer.compute_loss, {"n": 0}

    def oom_on_third(batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(batch)

    monkeypatch.setattr(trainer, "compute_loss", oom_on_third)
    with pytest.raises(TrainingError, match="out of memory at step 3 with batch_size=4.*lower batch_size"):
        trainer.run()
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["global_step"] == 2 and state["step_in_epoch"] == 2  # resume retries the failed batch


@pytest.mark.integration
def test_two_processes_match_one_with_the_same_global_batch(data, tmp_path):
    """torchrun --nproc_per_node=2 (gloo, CPU), 2 x 4 clips per step, against one process with 8: the same losses
    and averaged gradients for 5 steps (dropout and drop-path off; augmentation is a function of the clip alone)."""
    worker = Path(__file__).parent / "ddp_worker.py"
    common = settings(data, tmp_path / "out", "epochs=20", "model_overrides={drop_path: 0.0, token_dropout: 0.0}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    single, pair = tmp_path / "single.pt", tmp_path / "pair.pt"
    subprocess.run([sys.executable, str(worker), str(single), "5", *common, "batch_size=8"], env=env, check=True,
                   timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(worker), str(pair), "5", *common, "batch_size=4"], env=env, check=True, timeout=300)
    one, two = torch.load(single), torch.load(pair)
    for a, b in zip(one["losses"], two["losses"]):
        for key in ("loss", "align", "tfd"):
            assert b[key] == pytest.approx(a[key], rel=1e-5), key
    difference = (one["grads"] - two["grads"]).norm(dim=1) / one["grads"].norm(dim=1)
    assert difference.max() <= 1e-5, difference
    assert len(one["losses"]) == 5


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_accumulated_micro_batches_match_one_batch_for_vificlips_all_class_loss(data, tmp_path, device, monkeypatch):
    """global_batch_size=8 from 2 micro-batches of 4 against one batch of 8: the same loss and gradients (mixing,
    dropout and drop-path off); vificlip_classes=batch couples the clips of a batch and is refused. On CUDA, TF32 is
    off and the gate is 1e-4: kernels chosen per batch size reduce in another order."""
    tolerance = 1e-5 if device == "cpu" else 1e-4
    if device == "cuda":
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)

    def first_step(*extra):
        trainer = Trainer(load_config(None, settings(data, tmp_path, "model=vificlip_tiny", "objective=vificlip",
                                                     "mixup_alpha=0", "cutmix_alpha=0", "data.descriptions=",
                                                     "model_overrides={drop_path: 0.0}", f"device={device}",
                                                     *extra)))
        trainer.model.train()
        trainer.loader.set_epoch(0)
        micro_batches = next(iter(trainer.step_batches()))
        loss = trainer.train_step(micro_batches)["loss"]
        grads = torch.cat([p.grad.reshape(-1) for p in trainer.model.learnable_parameters()])
        return trainer, len(micro_batches), loss, grads

    whole, one, loss, grads = first_step("batch_size=8")
    parts, two, accumulated_loss, accumulated_grads = first_step("batch_size=4", "global_batch_size=8")
    assert (one, two) == (1, 2) and parts.steps_per_epoch == whole.steps_per_epoch
    assert accumulated_loss == pytest.approx(loss, rel=tolerance)
    assert (accumulated_grads - grads).norm() <= tolerance * grads.norm()
    with pytest.raises(ConfigError, match="vificlip_classes=batch .* cannot use"):
        first_step("batch_size=4", "global_batch_size=8", "vificlip_classes=batch")


def test_resume_refuses_or_replans_changed_settings(data, tmp_path):
    Trainer(load_config(None, settings(data, tmp_path, "max_steps=2"))).run()  # stops mid-epoch 1
    state = tmp_path / STATE_FILE
    with pytest.raises(TrainingError, match=r"optim.lr 0.005 -> 0.001.*Set resume_replan=true"):
        Trainer(load_config(None, settings(data, tmp_path, "optim.lr=1e-3"))).resume(state)
    with pytest.raises(TrainingError, match=r"another frames \(8 -> 4\).*start a new output_dir"):
        Trainer(load_config(None, settings(data, tmp_path, "frames=4"))).resume(state)
    with pytest.raises(TrainingError, match=r"global batch .* in the middle of epoch 1"):
        Trainer(load_config(None, settings(data, tmp_path, "batch_size=2", "resume_replan=true"))).resume(state)
    with pytest.raises(TrainingError, match="--resume takes the trainer state"):
        Trainer(load_config(None, settings(data, tmp_path))).resume(tmp_path / "model")
    replanned = Trainer(load_config(None, settings(data, tmp_path, "optim.lr=1e-3", "resume_replan=true")))
    with pytest.warns(UserWarning, match=r"applied from step 2: optim.lr 0.005 -> 0.001"):
        replanned.resume(state)
    factor = replanned.scheduler.lr_lambdas[0](replanned.scheduler.last_epoch)
    assert replanned.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * factor)
    assert replanned.scheduler.base_lrs == [1e-3]
    saved = torch.load(state, weights_only=True)  # a save from before optim.token_lr_scale existed: 1.0 then
    del saved["config"]["optim"]["token_lr_scale"]
    torch.save(saved, state)
    with pytest.raises(TrainingError, match=r"another optim.token_lr_scale \(1.0 -> 5.0\).*start a new output_dir"):
        Trainer(load_config(None, settings(data, tmp_path, "optim.token_lr_scale=5"))).resume(state)


def test_a_new_global_batch_at_an_epoch_boundary_replans_the_schedule_in_new_steps(data, tmp_path):
    Trainer(load_config(None, settings(data, tmp_path, "epochs=1"))).run()  # 6 steps of 4: epoch 1 done
    resumed = Trainer(load_config(None, settings(data, tmp_path, "batch_size=2", "resume_replan=true")))
    with pytest.warns(UserWarning, match=r"global batch 1 x 4 x 1 -> 1 x 2 x 1"):
        resumed.resume(tmp_path / STATE_FILE)
    assert resumed.steps_per_epoch == 12 and resumed.epoch == 1
    assert resumed.global_step == resumed.scheduler.last_epoch == 12  # one epoch, counted in the new steps


def test_a_full_disk_stops_training_before_it_starts(data, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    trainer = Trainer(load_config(None, settings(data, tmp_path)))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 20, 9 << 20, 1 << 20))
    with pytest.raises(TrainingError, match=r"0.00 GB free, training needs about 0.\d+ GB there"):
        trainer.run()
    assert not (tmp_path / "metrics.jsonl").exists()


def test_tiny_zero_shot_config_is_the_demos_recipe():
    """train/configs/tiny_zero_shot.yaml documents the recipe `t2l demo` trains T2L with: the two stay equal."""
    from t2l_fast.demo import stages

    config = yaml.safe_load((CONFIGS / "tiny_zero_shot.yaml").read_text())
    assert (config["epochs"], config["optim"]["lr"], config["optim"]["warmup_epochs"],
            config["optim"]["token_lr_scale"], config["tfd_weight"], config["batch_size"]) == (
        stages.TRAIN_EPOCHS, stages.TRAIN_LR, stages.WARMUP_EPOCHS, stages.TOKEN_LR_SCALE, stages.TFD_WEIGHT, 16)
    assert config["data"]["twin_batches"] and not config["data"]["flip"]

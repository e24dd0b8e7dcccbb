import os

import pytest
import torch
from _tiny import fixed_batch, tiny_method, tiny_net

from dplc.config import LoopConfig
from dplc.data import BatchSampler, to_tensor
from dplc.methods import build_method
from dplc.train import CHECKPOINT_NAME, NonFiniteLossError, NullCallback, train


def _images(n=64):
    x = fixed_batch(n)
    return ((x + 1) * 127.5).round().to(torch.uint8)


def _setup(name="wpp", steps=6, seed=3, c=0):
    torch.manual_seed(seed)
    method = build_method(tiny_net(code_channels=c), tiny_method(name), steps)
    return method, BatchSampler(_images(), seed=seed)


class Recorder(NullCallback):
    def __init__(self):
        self.steps, self.ckpts = [], []

    def on_step(self, step, metrics):
        self.steps.append((step, metrics))

    def on_checkpoint(self, step, path):
        self.ckpts.append((step, path))


def _params(method):
    return {
        f"{k}.{n}": t.clone() for k, m in method.modules.items() for n, t in m.state_dict().items()
    }


@pytest.mark.parametrize("name,c,ema", [("wpp", 0, 0.0), ("wpp", 0, 0.9), ("dplc", 2, 0.0)])
def test_resume_continues_bit_identically(tmp_path, name, c, ema):
    loop = LoopConfig(steps=6, seed=3, checkpoint_every=3, log_every=1, progress_every_s=0)
    from dplc.nets import Generator

    def make():
        torch.manual_seed(3)
        gen = Generator(tiny_net()).eval() if name == "dplc" else None
        cfg = tiny_method(name, ema_decay=ema)
        m = build_method(tiny_net(code_channels=c), cfg, loop.steps, generator=gen)
        return m, BatchSampler(_images(), seed=3)

    full, s_full = make()
    rec_full = Recorder()
    train(full, s_full, loop, tmp_path / "full", [rec_full])

    part, s_part = make()
    train(part, s_part, LoopConfig(**{**loop.__dict__, "steps": 3}), tmp_path / "part")
    # a fresh process would rebuild everything from scratch: new objects, other RNG state
    torch.manual_seed(999)
    resumed, s_res = make()
    torch.manual_seed(12345)
    rec_res = Recorder()
    result = train(resumed, s_res, loop, tmp_path / "part", [rec_res])
    assert result.resumed_from == 3 and result.steps == 3
    a, b = _params(full), _params(resumed)
    assert a.keys() == b.keys()
    assert any(k.startswith("generator_ema.") for k in a) == (ema > 0)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert rec_full.steps[3:] == rec_res.steps


def test_checkpoints_written_and_reported(tmp_path):
    method, sampler = _setup(steps=5)
    rec = Recorder()
    loop = LoopConfig(steps=5, checkpoint_every=2, log_every=2, progress_every_s=0)
    result = train(method, sampler, loop, tmp_path, [rec])
    assert [s for s, _ in rec.ckpts] == [2, 4, 5]
    assert [s for s, _ in rec.steps] == [2, 4, 5]
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    assert result.images_per_s > 0
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 5 and state["method_name"] == "wpp"


def test_nan_loss_stops_with_message_and_keeps_checkpoint(tmp_path):
    method, sampler = _setup(name="cae", c=1, steps=10)
    loop = LoopConfig(steps=10, checkpoint_every=2, log_every=1, progress_every_s=0)
    real_step = method.step
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        out = real_step(batch)
        if calls["n"] == 5:
            out["loss"] = float("nan")
        return out

    method.step = poisoned
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss .*nan.* at step 5; last good checkpoint kept at"
    ):
        train(method, sampler, loop, tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 4


def test_nan_from_poisoned_data_is_caught(tmp_path):
    method, _ = _setup(name="cae", c=1)
    images = _images()

    class NaNSampler(BatchSampler):
        def __call__(self, n):
            x = super().__call__(n)
            x[0, 0, 0, 0] = float("nan")
            return x

    with pytest.raises(NonFiniteLossError):
        train(method, NaNSampler(images, 0), LoopConfig(steps=3, progress_every_s=0), tmp_path)
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_checkpoint_of_other_method_is_refused(tmp_path):
    m1, s1 = _setup(name="wae")
    train(m1, s1, LoopConfig(steps=1, progress_every_s=0), tmp_path)
    m2, s2 = _setup(name="wpp")
    with pytest.raises(ValueError, match="is for method 'wae'"):
        train(m2, s2, LoopConfig(steps=2, progress_every_s=0), tmp_path)


def test_to_tensor_is_used_for_sampler():
    imgs = to_tensor(_images(4).permute(0, 2, 3, 1).numpy(), 32)
    s = BatchSampler(imgs, 0)
    assert s(3).shape == (3, 1, 32, 32)


@pytest.mark.parametrize("name,c", [("wpp", 0), ("gc", 2), ("cae", 2)])
def test_channels_last_layout_trains_the_same_and_ends_in_standard_layout(name, c):
    """The NHWC training layout changes strides, not the mathematics: from the same seed the
    two layouts end within float rounding of each other (far closer than the training moved
    the weights), and the weights come back in the standard layout."""
    results, start = {}, None
    for flag in (False, True):
        method, sampler = _setup(name, steps=4, c=c)
        start = _params(method)
        loop = LoopConfig(steps=4, log_every=2, progress_every_s=0, channels_last=flag)
        train(method, sampler, loop)
        results[flag] = _params(method)
        four_d = [t for k, t in results[flag].items() if t.dim() == 4]
        assert four_d and all(t.is_contiguous() for t in four_d)
    keys = [k for k, t in start.items() if t.is_floating_point()]
    flat = lambda d: torch.cat([d[k].reshape(-1).float() for k in keys])  # noqa: E731
    moved = (flat(results[False]) - flat(start)).norm()
    apart = (flat(results[False]) - flat(results[True])).norm()
    assert moved > 0 and apart < 0.02 * moved, (float(apart), float(moved))


def test_precision_auto_resolves_per_device():
    from dplc.method import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    want = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == want
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize("name,c", [("wpp", 0), ("dplc", 2), ("gc", 2)])
def test_an_explicit_device_and_auto_precision_train_as_the_default_on_the_cpu(name, c):
    """The device path (method.to, batches moved, draws from the CPU generator then moved)
    changes nothing on the CPU: the same weights, bit for bit, as a run that never names one."""
    from dplc.nets import Generator

    results = []
    for device, precision in ((None, "fp32"), ("cpu", "auto")):
        torch.manual_seed(3)
        gen = Generator(tiny_net()).eval() if name == "dplc" else None
        method = build_method(tiny_net(code_channels=c), tiny_method(name), 4, precision, generator=gen)
        loop = LoopConfig(steps=4, log_every=2, progress_every_s=0, precision=precision)
        train(method, BatchSampler(_images(), seed=3), loop, device=device)
        assert method.precision == "fp32" and method.device == torch.device("cpu")
        results.append(_params(method))
    assert results[0].keys() == results[1].keys()
    for k in results[0]:
        assert torch.equal(results[0][k], results[1][k]), k


@pytest.mark.parametrize("name,c", [("wpp", 0), ("dplc", 2)])
def test_warm_up_steps_leave_the_run_where_it_was(name, c):
    """The steps a CUDA run throws away first (dplc.train.warm_up) are undone in full: a run
    after them ends with the same weights, bit for bit, as one without them; the check fails
    if the restore is dropped (the warm-up's steps then count)."""
    from dplc.nets import Generator
    from dplc.train import _batches, warm_up

    results = []
    for warm in (0, 3):
        torch.manual_seed(3)
        gen = Generator(tiny_net()).eval() if name == "dplc" else None
        method = build_method(tiny_net(code_channels=c), tiny_method(name), 4, "fp32", generator=gen)
        sampler = BatchSampler(_images(), seed=3)
        if warm:
            method.train(True)
            warm_up(method, sampler, _batches(method, sampler, channels_last=False), warm)
        train(method, sampler, LoopConfig(steps=4, log_every=2, progress_every_s=0))
        results.append(_params(method))
    for k in results[0]:
        assert torch.equal(results[0][k], results[1][k]), k


def test_warm_up_without_its_restore_would_be_seen(monkeypatch):
    """The check above has power: with the restore stubbed out the weights differ."""
    import dplc.train as T

    monkeypatch.setattr(T, "load_checkpoint", lambda *a, **k: 0)
    results = []
    for warm in (0, 3):
        torch.manual_seed(3)
        method = build_method(tiny_net(), tiny_method("wpp"), 4, "fp32")
        sampler = BatchSampler(_images(), seed=3)
        if warm:
            T.warm_up(method, sampler, T._batches(method, sampler, channels_last=False), warm)
        train(method, sampler, LoopConfig(steps=4, log_every=2, progress_every_s=0))
        results.append(_params(method))
    assert any(not torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_deterministic_kernels_on_cuda_only(monkeypatch):
    """On a CUDA device cuDNN is held to deterministic algorithms without its autotuner, and
    cuBLAS gets a fixed workspace (an fp32 GPU run otherwise does not repeat itself:
    reports/bench/gpu.json); a CPU device changes nothing."""
    from dplc.train import deterministic_kernels

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    deterministic_kernels(torch.device("cpu"))
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    deterministic_kernels(torch.device("cuda", 0))
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"

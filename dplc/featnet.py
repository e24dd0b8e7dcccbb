"""The domain feature network for FID/KID and its torch-fidelity feature extractor.

No Inception weights can be downloaded here, so FIDs on small images use a classifier trained
on the training split of the same data. A labelled source (Fashion-MNIST, MNIST) trains it on
its classes; an unlabelled one (CelebA, LSUN, a folder: labels -1) on predicting which of four
rotations (0°, 90°, 180°, 270°) an image was given (Gidaris et al., ICLR 2018), a task that
needs the objects' shape and orientation. Its 128-d penultimate layer, taken *before*
the ReLU (features after a ReLU leave dead units), are the features. The classifier
uses GroupNorm, not BatchNorm, so its eval-mode features never depend on stale running
statistics (the other pitfall).

The extractor is registered with torch-fidelity under the name ``dplc-featnet``; metric names
carry the feature space (``fid_featnet``, ``kid_featnet``), never to be compared with Inception
FIDs. Workflow::

    net = train_featnet(train_images, train_labels, epochs=4)   # uint8 (N, C, 32, 32)
    save_featnet(net, "featnet.safetensors")
    register()                                                  # once per process
    torch_fidelity.calculate_metrics(input1=..., input2=..., feature_extractor=EXTRACTOR_NAME,
                                     feature_extractor_weights_path="featnet.safetensors", ...)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dplc.progress import ProgressLine

EXTRACTOR_NAME = "dplc-featnet"
FEATURE_LAYER = "penultimate"
FEATURE_DIM = 128


class FeatNet(nn.Module):
    """conv 32-64-128-128 (GroupNorm, ReLU, 2x2 pooling), 128-d linear features, linear classifier."""

    def __init__(self, channels: int = 1, classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.GroupNorm(8, cout),
                nn.ReLU(inplace=True),
            ]

        self.trunk = nn.Sequential(
            *block(channels, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            *block(64, 128), nn.MaxPool2d(2),
            *block(128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.features = nn.Linear(128, FEATURE_DIM)
        self.classifier = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(FEATURE_DIM, classes))
        self.channels = channels
        self.classes = classes

    def embed(self, x: Tensor) -> Tensor:
        """Penultimate features (pre-activation) of images in [-1, 1]."""
        return self.features(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.embed(x))


ROTATION = "rotation"
CLASSES = "classes"


@dataclass
class FeatNetReport:
    test_accuracy: float
    seconds: float
    epochs: int
    task: str = CLASSES


def task_of(labels: Tensor) -> str:
    """``classes`` when every image has a label, ``rotation`` when none has (labels -1)."""
    if labels.numel() and bool((labels >= 0).all()):
        return CLASSES
    if labels.numel() == 0 or bool((labels < 0).all()):
        return ROTATION
    raise ValueError("some images have labels and some do not (-1); the feature network needs one or the other")


def rotate(images: Tensor, quarter_turns: Tensor) -> Tensor:
    """Rotate image i by ``quarter_turns[i]`` × 90° (N×C×H×W, square images)."""
    out = images.clone()
    for k in range(1, 4):
        mask = quarter_turns == k
        if mask.any():
            out[mask] = torch.rot90(images[mask], k, dims=(2, 3))
    return out


def _as_float(images: Tensor) -> Tensor:
    return images.float() / 127.5 - 1.0 if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def accuracy(net: FeatNet, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy on uint8 or [-1, 1] images; for unlabelled images, the accuracy of
    telling each image's four rotations apart."""
    net.eval()
    if task_of(labels) == ROTATION:
        turns = torch.arange(4).repeat_interleave(images.shape[0])
        images, labels = rotate(images.repeat(4, 1, 1, 1), turns), turns
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        pred = net(_as_float(images[i : i + batch_size])).argmax(1)
        correct += int((pred == labels[i : i + batch_size]).sum())
    return correct / max(1, images.shape[0])


def train_featnet(
    images: Tensor,
    labels: Tensor,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    test: tuple[Tensor, Tensor] | None = None,
    flip: bool = True,
    progress_every_s: float = 15.0,
) -> tuple[FeatNet, FeatNetReport]:
    """Train the classifier with Adam and a one-cycle schedule; random horizontal flips.

    Unlabelled images (labels -1) train it to tell four rotations apart (:func:`task_of`).
    Writes a progress line (step, loss, images/s, ETA) every ``progress_every_s`` seconds.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    task = task_of(labels)
    if task == ROTATION and images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotation features need square images, got {tuple(images.shape[-2:])}")
    classes = 4 if task == ROTATION else int(labels.max()) + 1
    net = FeatNet(images.shape[1], classes)
    steps = epochs * ((images.shape[0] + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.perf_counter()
    line = ProgressLine("featnet", steps, batch_size, every_s=progress_every_s)
    step = 0
    net.train()
    net.to(memory_format=torch.channels_last)  # NHWC: faster oneDNN convolutions on the CPU
    for epoch in range(epochs):
        perm = torch.randperm(images.shape[0], generator=gen)
        for i in range(0, images.shape[0], batch_size):
            idx = perm[i : i + batch_size]
            x = _as_float(images[idx]).contiguous(memory_format=torch.channels_last)
            if flip:
                mask = torch.rand(x.shape[0], generator=gen) < 0.5
                x = torch.where(mask[:, None, None, None], x.flip(-1), x)
            target = labels[idx]
            if task == ROTATION:
                target = torch.randint(4, (x.shape[0],), generator=gen)
                x = rotate(x, target).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(x), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress_every_s > 0:
                line.on_step(step, {"epoch": epoch + 1, "loss": loss.item()})
    net.to(memory_format=torch.contiguous_format)
    net.eval()
    acc = accuracy(net, *test) if test is not None else float("nan")
    return net, FeatNetReport(acc, time.perf_counter() - t0, epochs, task)


def _canonical_header(path: Path) -> None:
    """Rewrite a safetensors file's JSON header with sorted keys, so equal weights give equal
    bytes. safetensors writes its metadata from a hash map whose order changes between
    processes, which would make every rerun of the ``featnet`` stage look like a new output to
    DVC. Tensor offsets are relative to the data after the header, so only the header changes
    (8-byte little-endian length, the JSON, space padding to a multiple of 8, as safetensors)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(len(header).to_bytes(8, "little") + header + raw[8 + n :])
    tmp.replace(path)


def save_featnet(net: FeatNet, path: str | Path) -> Path:
    """safetensors weights with the geometry in the metadata (byte-deterministic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"channels": str(net.channels), "classes": str(net.classes), "format": "dplc-featnet-1"}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)
    _canonical_header(path)
    return path


def load_featnet(path: str | Path) -> FeatNet:
    """Load weights written by :func:`save_featnet` (safetensors, no pickle)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"feature network weights not found: {path} (run the `featnet` stage)"
        )
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "dplc-featnet-1":
        raise ValueError(f"{path} is not a dplc feature network")
    net = FeatNet(int(meta["channels"]), int(meta["classes"]))
    net.load_state_dict(load_file(str(path)))
    return net.eval()


class FeatNetExtractor(torch_fidelity.FeatureExtractorBase):
    """torch-fidelity adapter: uint8 (N, C, H, W) batches -> the 128-d penultimate features."""

    _cache: dict[str, FeatNet] = {}

    def __init__(self, name: str, features_list: list[str], **kwargs) -> None:
        super().__init__(name, features_list)
        path = kwargs.get("feature_extractor_weights_path")
        if not path:
            raise ValueError("the dplc-featnet extractor needs feature_extractor_weights_path")
        key = str(Path(path).resolve())
        if key not in self._cache:  # channels-last: faster oneDNN convolutions on the CPU
            self._cache[key] = load_featnet(path).to(memory_format=torch.channels_last)
        self.net = self._cache[key]

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return (FEATURE_LAYER,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return FEATURE_LAYER

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 1, 32, 32, dtype=torch.uint8)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        with torch.no_grad():
            x = _as_float(x).contiguous(memory_format=torch.channels_last)
            return (self.net.embed(x).double(),)


_registered = False


def register() -> None:
    """Register :class:`FeatNetExtractor` with torch-fidelity (idempotent)."""
    global _registered
    if not _registered:
        torch_fidelity.register_feature_extractor(EXTRACTOR_NAME, FeatNetExtractor)
        _registered = True


def write_report(report: FeatNetReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.__dict__, indent=2))

"""DVC stage `featnet`: the domain classifier whose penultimate features FID/KID use.

    python -m pipelines.featnet

Writes ``runs/featnet/featnet.safetensors`` and ``runs/featnet/metrics.json`` (test accuracy:
of the classes, or of the rotations for an unlabelled source; the task is logged to MLflow).
"""

from __future__ import annotations

import json

import torch

from dplc import data, featnet, inception
from pipelines import layout as L
from pipelines import params as P
from pipelines import stage_timing, tracking


def main() -> None:
    timing = stage_timing.Timing()
    params = P.load()
    f = params["featnet"]
    if f.get("inception_weights"):  # the first stage that needs them: refuse before any work
        try:
            inception.check_weights(f["inception_weights"])
        except inception.InceptionWeightsError as e:
            raise SystemExit(f"featnet: {e}") from None
    tracking.check_store(params)
    torch.set_num_threads(max(1, P.ray_params(params).threads_per_worker))
    root = L.prepared_dir()
    size = params["data"]["image_size"]
    train = data.read_split(root, "train")
    test = data.read_split(root, "test")
    net, report = featnet.train_featnet(
        data.to_tensor(train.images, size),
        torch.from_numpy(train.labels),
        epochs=int(f["epochs"]),
        batch_size=int(f["batch_size"]),
        lr=float(f["lr"]),
        seed=int(params["seed"]),
        test=(data.to_tensor(test.images, size), torch.from_numpy(test.labels)),
    )
    out = L.featnet_dir()
    featnet.save_featnet(net, out / "featnet.safetensors")
    metrics = {"featnet_test_accuracy": report.test_accuracy}
    timing.training_seconds = report.seconds
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(metrics | {"featnet_task": report.task})
    with tracking.stage_run(params, "featnet") as run:
        run.log_params({"featnet": f, "featnet_task": report.task})
        run.log_metrics(metrics | {"featnet_seconds": report.seconds})
        run.log_artifact(out / "featnet.safetensors")
    stage_timing.write("featnet", timing.summary())


if __name__ == "__main__":
    main()

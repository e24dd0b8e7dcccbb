"""DVC stage `gaussian`: the Gaussian source with a known answer (closed-form limits).

    python -m pipelines.gaussian

Trains G*, then CAE, DPLC and DPLC with shared noise (``dplc_shared``) at every rate of ``gaussian.rates`` on a synthetic
d-dimensional Gaussian with unequal variances (small MLPs, in process: a few minutes on one
core, too small for a Ray job to pay its start-up), and writes ``runs/gaussian/results.json``
and the plot ``<report_dir>/plots/gaussian.png`` of measured MSE against the closed-form curves.
"""

from __future__ import annotations

import json
from pathlib import Path

from dplc import gaussian, gaussian_study
from pipelines import layout as L
from pipelines import params as P
from pipelines import stage_timing, tracking

OUT = L.gaussian_results()


def plot(res: dict, path: Path) -> None:
    """Measured MSE per dimension (CAE, DPLC) with D(R), 2·D(R) and D(R, 0) against bits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = res["bits"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(bits, res["d_opt"], "k-", label="D(R): MSE-optimal")
    ax.plot(bits, res["d_private"], "k--", label="2·D(R): realism, private noise")
    ax.plot(bits, res["d_common"], "k:", label="D(R,0): realism, common randomness")
    ax.plot(bits, res["d_k"], "-", color="0.6", label="D_K: best 2^R-cell quantizer (Lloyd)")
    ax.plot(bits, [2 * d for d in res["d_k"]], "--", color="0.6", label="2·D_K: its realism bound")
    ax.plot(bits, res["mse_cae"], "o-", color="tab:blue", label="CAE (measured)")
    ax.plot(bits, res["mse_dplc"], "s-", color="tab:red", label="DPLC, private noise (measured)")
    if "mse_dplc_shared" in res:
        form = res["config"]["shared"]
        ax.plot(bits, res["mse_dplc_shared"], "^-", color="tab:green", label=f"DPLC, shared noise ({form}; measured)")
    ax.set_xlabel("bits per vector")
    ax.set_ylabel("MSE per dimension")
    v = res["config"]["variances"]
    ax.set_title(f"Gaussian source, d={len(v)}, σ²={v}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    timing = stage_timing.Timing()
    params = P.load()
    tracking.check_store(params)
    cfg = gaussian.GaussianConfig.from_dict(params["gaussian"] | {"seed": int(params["seed"])})
    with tracking.stage_run(params, "gaussian") as run:
        run.log_params({"gaussian": params["gaussian"]})
        res = gaussian_study.run(cfg)
        timing.training_seconds = res.pop("seconds")  # a time, not a result (pipelines.stage_timing)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2))
        plot_path = P.report_dir(params) / "plots" / "gaussian.png"
        plot(res, plot_path)
        for i, c in enumerate(res["code_scalars"]):
            run.log_metrics(
                {
                    "mse_cae": res["mse_cae"][i],
                    "mse_dplc": res["mse_dplc"][i],
                    "mse_ratio": res["mse_ratio"][i],
                    "w2_over_sigma2_dplc": res["w2_dplc"][i],
                    "dplc_over_2dk": res["gaussian_dplc_over_2dk"][i],
                    "cae_over_dk": res["gaussian_cae_over_dk"][i],
                    "variance_error_max_dplc": max(abs(e) for e in res["variance_error_dplc"][i]),
                }
                | ({"lambda_rate_dplc": res["lambda_rate_dplc"][i]} if c else {})
                | ({"dplc_code_over_dk": res["gaussian_dplc_code_over_dk"][i], "dplc_over_2code": res["gaussian_dplc_over_2code"][i]}
                   if "gaussian_dplc_code_over_dk" in res else {})  # fmt: skip
                | ({"dplc_floor_over_2dk": res["gaussian_dplc_floor_over_2dk"][i],
                    "dplc_over_floor": res["gaussian_dplc_over_floor"][i]}
                   if "gaussian_dplc_floor_over_2dk" in res else {})  # fmt: skip
                | ({"mse_dplc_shared": res["mse_dplc_shared"][i], "shared_over_2dk": res["gaussian_shared_over_2dk"][i],
                    "variance_error_max_dplc_shared": max(abs(e) for e in res["variance_error_dplc_shared"][i])}
                   if "mse_dplc_shared" in res else {}),  # fmt: skip
                step=c,
            )
        run.log_metrics({"seconds": timing.training_seconds, "generator_w2_over_sigma2": res["generator_w2_over_sigma2"],
                         "gaussian_variance_error_max": res["gaussian_variance_error_max"]})  # fmt: skip
        run.log_artifact(OUT)
        run.log_artifact(plot_path)
    stage_timing.write("gaussian", timing.summary())


if __name__ == "__main__":
    main()

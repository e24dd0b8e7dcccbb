"""dplc.progress: one line per interval, always the last step, a finite ETA."""

from dplc.progress import ProgressLine


def test_lines_are_rate_limited_but_the_last_step_always_prints():
    lines: list[str] = []
    p = ProgressLine("cae", total=30, images_per_step=64, every_s=3600.0, write=lines.append)
    for step in range(10, 31, 10):
        p.on_step(step, {"mse": 0.5, "rate": 1.0})
    assert len(lines) == 1 and lines[0].startswith("[cae] step 30/30 (100%) mse 0.5 rate 1")
    assert lines[0].endswith("done")


def test_every_line_when_the_interval_is_zero_with_an_eta():
    lines: list[str] = []
    p = ProgressLine("wpp", total=100, images_per_step=128, start=20, every_s=0.0,
                     write=lines.append)  # fmt: skip
    p.on_step(40, {"loss": 1.0})
    assert len(lines) == 1 and "step 40/100 (40%)" in lines[0] and "ETA " in lines[0]
    assert "img/s" in lines[0] and "inf" not in lines[0]

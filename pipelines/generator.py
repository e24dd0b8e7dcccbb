"""DVC stage `generator`: G* by ``wpp`` (Wasserstein++), ``wgan_gp`` or ``wae`` as a Ray Train job.

    python -m pipelines.generator --method wpp

Writes ``runs/generator/<method>/codec`` (G* as a rate-0 prior codec) and ``samples.png``.
"""

from pipelines.train import main_generator

if __name__ == "__main__":
    main_generator()

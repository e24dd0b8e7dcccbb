"""Inception-v3 weights for FID/KID: found on disk or refused, never downloaded, never unpickled
blind.

torch-fidelity's ``inception-v3-compat`` extractor (the TF-FID network of Heusel et al. 2017)
reads ``pt_inception-2015-12-05-6726825d.pth`` with a full ``torch.load``. dplc hands it a file
only after :func:`check_weights` has

* found it (else :class:`InceptionWeightsError`, one message naming the file and where it goes);
* read it with ``torch.load(weights_only=True)``, which admits tensors and containers and no
  other object, as a mapping of tensors;
* when the file name carries a hash prefix (torch.hub's ``name-<sha256 prefix>.pth``
  convention, as the published file does), checked that the SHA-256 begins with it.

A stand-in file of the same format (another state dict of the same network) passes; its FIDs
are then not comparable with published ones, which :func:`is_published` tells.
"""

from __future__ import annotations

import re
from pathlib import Path

from dplc.digest import file_sha256

PUBLISHED_NAME = "pt_inception-2015-12-05-6726825d.pth"
PUBLISHED_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")


class InceptionWeightsError(FileNotFoundError):
    """The configured Inception weights are missing or not a plain state dict."""


def missing_message(path: str | Path) -> str:
    """The one message for a missing weights file: which file, where it goes, what else to do."""
    return (
        f"Inception weights not found at {path}: download {PUBLISHED_URL} (torch-fidelity's "
        f"{PUBLISHED_NAME}) on a machine with internet and put it at that path, or set "
        "featnet.inception_weights: null to use the domain feature network alone; dplc never "
        "downloads it"
    )


def check_weights(path: str | Path) -> Path:
    """Return ``path`` once it is a readable Inception state dict (see the module docstring)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise InceptionWeightsError(missing_message(p))
    named = _HASH_IN_NAME.search(p.name)
    if named is not None:
        digest = file_sha256(p)
        if not digest.startswith(named.group(1)):
            raise InceptionWeightsError(
                f"{p}: its name says SHA-256 {named.group(1)}…, its content is {digest[:16]}… "
                "(a truncated or different file); download it again"
            )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any refusal of the safe loader means the same thing
        raise InceptionWeightsError(f"{p} is not a plain PyTorch state dict ({e.__class__.__name__})") from e
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InceptionWeightsError(f"{p} is not a state dict of tensors")
    if "fc.weight" not in state or "Conv2d_1a_3x3.conv.weight" not in state:
        raise InceptionWeightsError(f"{p} is not torch-fidelity's Inception-v3 (its layer names are missing)")
    return p


def is_published(path: str | Path) -> bool:
    """Whether ``path`` holds the published weights (its SHA-256 begins with their prefix)."""
    return file_sha256(path).startswith(_HASH_IN_NAME.search(PUBLISHED_NAME).group(1))

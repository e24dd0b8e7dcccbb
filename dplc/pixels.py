"""Pixels between files and networks, in numpy: uint8 (N, H, W, channels) <-> float (N, C, S, S).

Images smaller than the network's S x S (Fashion-MNIST's 28 x 28 for the 32 x 32 networks) are
zero-padded symmetrically and cropped back after decoding; values map [0, 255] <-> [-1, 1].
Both the torch reference path and the torch-free runtime use these functions, so the two agree
on every pixel outside the networks.

>>> x = np.full((1, 28, 28, 1), 255, np.uint8)
>>> y = pad_to(x, 32)
>>> y.shape, int(y[0, 0, 0, 0]), int(y[0, 0, 2, 2])
((1, 1, 32, 32), 0, 255)
>>> bool((crop_to(y, 28, 28).transpose(0, 2, 3, 1) == x).all())
True
>>> to_uint8(to_float(y)).dtype, int(to_uint8(np.array([1.7], np.float32))[0])
(dtype('uint8'), 255)
"""

from __future__ import annotations

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""Picture files the dataset sources and the command line read."""

class ImageInputError(ValueError):
    """Images have the wrong dtype, shape, size or channel count for the codec."""


def check_images(images: np.ndarray, size: int, channels: int, max_images: int) -> np.ndarray:
    """uint8 (N, H, W, channels) (or (N, H, W) for one channel), 1 ≤ N ≤ ``max_images``,
    H, W ≤ ``size``, checked."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ImageInputError(f"images must be uint8, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ImageInputError(f"images must have shape (N, H, W, channels), got {arr.shape}")
    n, h, w, c = arr.shape
    if not 1 <= n <= max_images:
        raise ImageInputError(f"a file holds 1..{max_images} images, got {n}")
    if c != channels:
        raise ImageInputError(f"the model takes {channels}-channel images, got {c} channels")
    if not (1 <= h <= size and 1 <= w <= size):
        raise ImageInputError(f"the model takes images up to {size}x{size}, got {h}x{w}")
    return arr


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, C) -> uint8 (N, C, S, S), zero-padded symmetrically (28 -> 32)."""
    n, h, w, c = images.shape
    if h > size or w > size:
        raise ImageInputError(f"images are {h}x{w}, larger than the network's {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((n, c, size, size), dtype=np.uint8)
    out[:, :, top : top + h, left : left + w] = images.transpose(0, 3, 1, 2)
    return out


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255], rounded (half to even) and clamped."""
    scaled = (np.clip(images.astype(np.float32), -1, 1) + np.float32(1.0)) * np.float32(127.5)
    return np.round(scaled).astype(np.uint8)


def crop_to(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Undo :func:`pad_to`'s padding on (..., S, S): the central ``height`` x ``width`` window."""
    s = images.shape[-1]
    top, left = (s - height) // 2, (s - width) // 2
    return images[..., top : top + height, left : left + width]


def to_pictures(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Decoded float (N, C, S, S) -> uint8 (N, height, width, C), contiguous."""
    return np.ascontiguousarray(crop_to(to_uint8(images), height, width).transpose(0, 2, 3, 1))

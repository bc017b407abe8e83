"""Clean training clips cut on the training device from a corpus held there as uint8.

The host path (pairs.HostClips: numpy crops in loader processes, copied over) leaves a GPU idle:
a small window network trains faster than 16 processes can cut, degrade and ship its batches. So
the decoded corpus (a few GB at most) moves to the device once, and crops, flips, the synthetic
motion of still images and the degradations (degradations.py, torch) all run there. Same draws,
same contract as HostClips: clips(length, size, rng) -> ((T,3,size,size) float [0,1], state).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .data import Sequence, augment_flags, cut_origin, frame_indices, pick_sequence
from .pairs import unit_frames


def _augment(clip: torch.Tensor, flags) -> torch.Tensor:
    """(T,3,H,W) flips, transpose and time reversal, as data._augment on the host layout."""
    fx, fy, tr, rev = flags
    if fx:
        clip = clip.flip(-1)
    if fy:
        clip = clip.flip(-2)
    if tr:
        clip = clip.transpose(-1, -2)
    if rev:
        clip = clip.flip(0)
    return clip


class DeviceClips:
    def __init__(self, seqs: list[Sequence], device: torch.device):
        self.seqs, self.device = seqs, device
        # one device copy per distinct array: encodes of the same clip share their clean frames
        self._store: dict[int, torch.Tensor] = {}
        for s in seqs:
            for arr in (s.frames, *(a for _, a in s.encoded)):
                if id(arr) not in self._store:
                    self._store[id(arr)] = torch.from_numpy(np.ascontiguousarray(arr)).to(device)

    def nbytes(self) -> int:
        return sum(t.numel() for t in self._store.values())

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        return self._store[id(arr)]

    def __call__(self, length: int, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        seq = pick_sequence(self.seqs, rng)
        if seq.still:
            return _augment(self._still_clip(self._tensor(seq.frames)[0], length, size, rng), augment_flags(rng)), {}
        idx = frame_indices(len(seq.frames), length, 2, rng)
        pick = int(rng.integers(len(seq.encoded))) if seq.encoded else -1
        versions = [self._tensor(seq.frames)] + ([self._tensor(seq.encoded[pick][1])] if pick >= 0 else [])
        index = torch.from_numpy(idx).to(self.device)
        h, w = seq.frames.shape[1:3]
        if h < size or w < size:
            cut = [unit_frames(v.index_select(0, index)) for v in versions]
            cut = [F.interpolate(c, size=(max(h, size), max(w, size)), mode="bicubic", align_corners=False)
                   for c in cut]
            h, w = cut[0].shape[-2:]
            y, x = cut_origin(h, w, size, rng, encoded=pick >= 0)
            cut = [c[..., y:y + size, x:x + size] for c in cut]
        else:
            y, x = cut_origin(h, w, size, rng, encoded=pick >= 0)
            cut = [unit_frames(v.index_select(0, index)[:, y:y + size, x:x + size]) for v in versions]
        flags = augment_flags(rng)
        cut = [_augment(c, flags).contiguous() for c in cut]
        state = {"encoded_label": seq.encoded[pick][0], "encoded": cut[1]} if pick >= 0 else {}
        return cut[0], state

    def _still_clip(self, img: torch.Tensor, length: int, size: int, rng: np.random.Generator) -> torch.Tensor:
        """A still image in slow motion (drift, zoom, rotation), as data._still_clip."""
        h, w = img.shape[:2]
        big = 2 * size
        src = unit_frames(img[None])
        if h < big or w < big:
            src = F.interpolate(src, size=(max(h, big), max(w, big)), mode="bicubic", align_corners=False)
            h, w = src.shape[-2:]
        cy = int(rng.integers(big // 2, h - big // 2 + 1))
        cx = int(rng.integers(big // 2, w - big // 2 + 1))
        region = src[..., cy - big // 2:cy - big // 2 + big, cx - big // 2:cx - big // 2 + big]
        vel = rng.uniform(-2.5, 2.5, size=2)
        zoom = rng.uniform(-0.01, 0.01)
        rot = rng.uniform(-0.5, 0.5)
        thetas = []
        for i in range(length):
            a = math.radians(rot * i)
            s = (size / big) / (1 + zoom * i)
            # output pixel -> region coordinates (normalised to [-1, 1] over the region)
            thetas.append([[s * math.cos(a), -s * math.sin(a), 2 * vel[0] * i / big],
                           [s * math.sin(a), s * math.cos(a), 2 * vel[1] * i / big]])
        theta = torch.tensor(thetas, dtype=torch.float32, device=self.device)
        grid = F.affine_grid(theta, [length, 3, size, size], align_corners=False)
        out = F.grid_sample(region.expand(length, -1, -1, -1), grid, mode="bicubic",
                            padding_mode="reflection", align_corners=False)
        return out.clamp(0, 1)

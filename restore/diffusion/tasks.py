"""What each restoration task feeds the network, for training and for inference alike.

A task turns degraded inputs into (cond, start) for a chunk of T frames:
  cond  (T, Cc, H, W): the task's conditioning channels + anchor frames + anchor mask
  start (T, 3, H, W):  the degraded estimate the sampler starts from (before adding noise)
All tensors are in [-1, 1]. Anchors are already-restored frames occupying the first slots of a
chunk; mask is 1 there, 0 elsewhere, and the anchor channels are zero where mask is 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..ops.flow import INTERP_PRESET, blend_warped, blend_weights, dis_flow, edge_weights, intermediate_flows
from ..ops.resize import imresize
from .motionnet import refined_hints


@dataclass(frozen=True)
class TaskSpec:
    name: str            # "denoise", "sr", "interp"
    task_channels: int   # conditioning channels before anchor + mask

    @property
    def cond_channels(self) -> int:
        return self.task_channels + 4


TASKS = {
    "denoise": TaskSpec("denoise", 3),
    "sr": TaskSpec("sr", 3),
    "interp": TaskSpec("interp", 13),  # f0, f1, warp0, warp1, t
}


def with_anchors(task_cond: torch.Tensor, anchors: torch.Tensor | None) -> torch.Tensor:
    """Append anchor channels and mask. task_cond (T,C,H,W); anchors (A,3,H,W) fill slots 0..A-1."""
    t, c, h, w = task_cond.shape
    # one allocation, each channel written once: at the output resolution of a chunk this is
    # hundreds of MB, and zeros + cat wrote the anchor channels twice into two fresh buffers
    out = task_cond.new_empty(t, c + 4, h, w)
    out[:, :c] = task_cond
    out[:, c:] = 0
    if anchors is not None and len(anchors):
        a = min(len(anchors), t)
        out[:a, c:c + 3] = anchors[-a:]
        out[:a, c + 3] = 1
    return out


def upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB bicubic upsample of (..., 3, h, w)."""
    h, w = lr.shape[-2:]
    return imresize(lr, (h * scale, w * scale))


# ---- interpolation hints -------------------------------------------------------------

def flow_hints(f0: np.ndarray, f1: np.ndarray, t: float, flows=None, motion=None):
    """DIS flow both ways; each endpoint backward-warped to time t (along the endpoint flows
    projected to t: `ops.flow.intermediate_flows`), and the classical occlusion-aware blend of the two,
    which is the estimate the model refines. f0, f1: float32 (H,W,3) in [0,1]; `flows`: the pair's
    (flow 0->1, flow 1->0) when already computed for another t; `motion`: a `MotionRefiner`
    that corrects the motion at t and the blend weight before the warps (None: DIS as it is).

    Returns (warp0, warp1, blend, edge). The blend leaves out the frame-edge rule of the classical
    method (`ops.flow.edge_weights`), as the shipped model was trained on it; `edge` (H, W) is the
    change that rule makes to frame 0's weight, which the restorer applies to the model's output."""
    f01, f10 = flows if flows is not None else (dis_flow(f0, f1, INTERP_PRESET), dis_flow(f1, f0, INTERP_PRESET))
    ft0, ft1 = intermediate_flows(f0, f1, t, f01, f10)
    weight0, weight1 = blend_weights(t, f01, f10, ft0, ft1, edge_margin=None)
    edge = edge_weights(weight0, weight1, ft0, ft1)[0] - weight0
    if motion is not None:  # the rule read from the DIS motion: the refiner corrects it by little
        return (*refined_hints(motion, f0, f1, t, ft0, ft1, weight0), edge)
    blend, w0, w1 = blend_warped(f0, f1, ft0, ft1, weight0, weight1)
    return w0, w1, blend, edge


def interp_task_cond(f0: np.ndarray, f1: np.ndarray, t: float, out: np.ndarray | None = None,
                     out_start: np.ndarray | None = None, motion=None,
                     out_edge: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(13,H,W) conditioning and (3,H,W) start estimate in [-1,1] for the frame at time t, written
    into `out` / `out_start` when given (a restorer fills one (T, ...) array in place). `out_edge`
    (3,H,W), when given, receives the frame-edge correction (`flow_hints`) on the same scale, to be
    added to the model's output."""
    w0, w1, blend, edge = flow_hints(f0, f1, t, motion=motion)
    if out_edge is not None:
        # the blend moves by d(weight0) * (warp0 - warp1); x2 for the [-1, 1] scale
        torch.from_numpy(out_edge).copy_(torch.from_numpy(2.0 * edge[..., None] * (w0 - w1)).permute(2, 0, 1))
    h, w = f0.shape[:2]
    cond = np.empty((13, h, w), np.float32) if out is None else out
    start = np.empty((3, h, w), np.float32) if out_start is None else out_start
    # HWC -> CHW through torch, whose transposing copies use every thread: numpy's strided ones
    # took a tenth of the interpolator's time per 1280x720 frame
    cond_t, start_t = torch.from_numpy(cond), torch.from_numpy(start)
    for i, img in enumerate((f0, f1, w0, w1)):
        cond_t[3 * i:3 * i + 3].copy_(torch.from_numpy(np.asarray(img, np.float32)).permute(2, 0, 1))
    start_t.copy_(torch.from_numpy(np.asarray(blend, np.float32)).permute(2, 0, 1))
    cond_t[:12].mul_(2).sub_(1)
    start_t.mul_(2).sub_(1)
    cond[12] = 2 * t - 1
    return cond, start

"""ffmpeg's denoisers (hqdn3d, nlmeans, bm3d) as peers of the diffusion denoiser.

Frames travel losslessly: rawvideo rgb24 into ffmpeg's stdin, rawvideo rgb24 back from stdout.
Each filter runs in planar RGB (gbrp) when it supports it, so no YUV rounding enters; hqdn3d only
takes YUV, so it runs in yuv444p (full-chroma, accurate rounding; the round trip alone is measured
by `roundtrip_psnr` and reported so its cost is visible).

Every peer has one tunable strength; `filter_graph(peer, value)` builds the graph for it.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

FFMPEG = "/usr/bin/ffmpeg" if shutil.which("/usr/bin/ffmpeg") else (shutil.which("ffmpeg") or "ffmpeg")
# swscale flags for the RGB <-> YUV conversions hqdn3d needs: exact rounding, no chroma tricks.
SWS = "accurate_rnd+full_chroma_int+full_chroma_inp+bitexact"


@dataclass(frozen=True)
class Peer:
    name: str          # short name used in tables and the tuning cache
    param: str         # the tuned parameter, as ffmpeg names it
    pix_fmt: str       # working pixel format inside ffmpeg
    lo: float          # valid range of the parameter
    hi: float
    description: str

    prior: float       # first guess of the best value per unit of noise sigma (0-255 scale)

    def first_guess(self, sigma: float) -> float:
        return float(np.clip(self.prior * sigma, self.lo, self.hi))


PEERS = {
    "hqdn3d": Peer("hqdn3d", "luma_spatial", "yuv444p", 0.5, 252.0,
                   "ffmpeg hqdn3d (spatio-temporal); luma_spatial tuned, chroma and temporal strengths "
                   "derived by ffmpeg (cs = 0.75 ls, lt = 1.5 ls, ct = lt cs / ls)", 1.2),
    "nlmeans": Peer("nlmeans", "s", "gbrp", 1.0, 30.0,
                    "ffmpeg nlmeans (per frame, patch 7, research window 15); strength s tuned", 0.7),
    "bm3d": Peer("bm3d", "sigma", "gbrp", 0.5, 5000.0,
                 "ffmpeg bm3d per frame, basic + final (Wiener) estimate, 16x16 blocks, step 4, "
                 "group 1; sigma tuned (its scale is not the noise std)", 5.0),
}


def filter_graph(peer: str, value: float | str) -> str:
    """The -filter_complex graph (input [0:v], output [out]) of `peer` at strength `value`
    (a string is inserted verbatim: "{v}" gives the template recorded in the tuning cache)."""
    p = PEERS[peer]
    v = value if isinstance(value, str) else f"{float(value):g}"
    if peer == "hqdn3d":
        core = f"hqdn3d=luma_spatial={v}"
    elif peer == "nlmeans":
        core = f"nlmeans=s={v}:p=7:r=15"
    elif peer == "bm3d":
        # Two-stage BM3D as in ffmpeg's documentation: a basic (hard-threshold) estimate, then the
        # Wiener stage guided by it. group=1: on davis-dog crops at noise 25 (ffmpeg 5.1) groups of
        # 8-16 blocks scored 5-10 dB *worse* at every sigma tried and cost 3-8x the time, while the
        # Wiener stage on top of group-1 basic gained ~0.3 dB for ~1.5x the time.
        common = "block=4:bstep=4:range=9:group=1"
        return (f"[0:v]format={p.pix_fmt},split[a][b];"
                f"[a]bm3d=sigma={v}:{common}:estim=basic[basic];"
                f"[b][basic]bm3d=sigma={v}:{common}:estim=final:ref=1,format=rgb24[out]")
    else:
        raise KeyError(peer)
    return (f"[0:v]scale=flags={SWS}:out_color_matrix=bt601:out_range=pc,format={p.pix_fmt},{core},"
            f"scale=flags={SWS}:in_color_matrix=bt601:in_range=pc,format=rgb24[out]"
            if p.pix_fmt.startswith("yuv") else
            f"[0:v]format={p.pix_fmt},{core},format=rgb24[out]")


def run_graph(frames_u8: np.ndarray, graph: str, threads: int | None = None) -> np.ndarray:
    """Pipe (T, H, W, 3) uint8 RGB through an ffmpeg filter graph; returns the same shape, uint8."""
    frames_u8 = np.ascontiguousarray(frames_u8, dtype=np.uint8)
    t, h, w, _ = frames_u8.shape
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", "25", "-i", "pipe:0",
           "-filter_complex", graph, "-map", "[out]", "-fps_mode", "passthrough",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    if threads:
        cmd[1:1] = ["-filter_complex_threads", str(threads), "-filter_threads", str(threads)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err: list[bytes] = []

    def feed():
        try:
            for f in frames_u8:
                proc.stdin.write(f.tobytes())
        except BrokenPipeError:
            pass  # ffmpeg died; its stderr says why
        finally:
            proc.stdin.close()

    def drain_err():
        err.append(proc.stderr.read())

    writer = threading.Thread(target=feed, daemon=True)
    reader = threading.Thread(target=drain_err, daemon=True)
    writer.start()
    reader.start()
    data = proc.stdout.read()
    writer.join()
    reader.join()
    rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"ffmpeg failed ({rc}) on graph {graph!r}: {b''.join(err).decode(errors='replace')[-500:]}")
    frame_bytes = h * w * 3
    if len(data) != t * frame_bytes:
        raise RuntimeError(f"ffmpeg returned {len(data) // frame_bytes} frames for {t} (graph {graph!r})")
    return np.frombuffer(data, np.uint8).reshape(t, h, w, 3).copy()


def apply_peer(peer: str, value: float, frames_u8: np.ndarray) -> np.ndarray:
    return run_graph(frames_u8, filter_graph(peer, value))


def roundtrip_psnr(frames_u8: np.ndarray, pix_fmt: str) -> float:
    """PSNR (RGB) of the format round trip alone, rgb24 -> pix_fmt -> rgb24 (inf when lossless)."""
    if pix_fmt.startswith("yuv"):
        graph = (f"[0:v]scale=flags={SWS}:out_color_matrix=bt601:out_range=pc,format={pix_fmt},"
                 f"scale=flags={SWS}:in_color_matrix=bt601:in_range=pc,format=rgb24[out]")
    else:
        graph = f"[0:v]format={pix_fmt},format=rgb24[out]"
    out = run_graph(frames_u8, graph)
    d = out.astype(np.float64) - frames_u8.astype(np.float64)
    m = float(np.mean(d * d))
    return float("inf") if m == 0 else 10 * np.log10(255.0 ** 2 / m)

"""ffmpeg's filters as peers: denoisers hqdn3d, nlmeans and bm3d (each with one strength tuned per
sigma), Lanczos scaling and motion-compensated interpolation (minterpolate).

Frames travel losslessly: rawvideo rgb24 into ffmpeg's stdin and back from its stdout. Each filter
runs in planar RGB (gbrp) when it supports it, so no YUV rounding enters; hqdn3d only takes YUV, so
it runs in yuv444p (full chroma, accurate rounding; the round trip alone costs it nothing
measurable: about 58 dB on davis-dog).

Tuning (restore.eval.tuning): each denoiser's strength is chosen per sigma for best RGB PSNR on a few
consecutive frames from the middle of the same clip's full length, with noise from another seed
(protocols.TUNE_SEED); the benchmark scores the first frames with the evaluation seed, so the
setting is never picked on the frames and noise it is scored on. Results are cached by recipe.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..protocols import TUNE_SEED, add_noise
from ..tuning import SEARCH, TuningCache, tune
from .base import Peer


def ffmpeg_path() -> str | None:
    # /usr/bin first: the recorded path is part of the tuning recipe, so a fixed location keeps
    # cache entries valid across shells with different PATHs.
    return "/usr/bin/ffmpeg" if shutil.which("/usr/bin/ffmpeg") else shutil.which("ffmpeg")


# swscale flags for the conversions: exact rounding, no chroma shortcuts.
SWS = "accurate_rnd+full_chroma_int+full_chroma_inp+bitexact"


def run_graph(frames_u8: np.ndarray, graph: str, *, out_size: tuple[int, int] | None = None,
              out_frames: int | None = None, ffmpeg: str | None = None, rate: str = "25") -> np.ndarray:
    """Pipe uint8 (T, H, W, 3) RGB through an ffmpeg -filter_complex graph ([0:v] -> [out]).
    out_size (H, W) and out_frames default to the input's."""
    ffmpeg = ffmpeg or ffmpeg_path()
    frames_u8 = np.ascontiguousarray(frames_u8, dtype=np.uint8)
    t, h, w, _ = frames_u8.shape
    oh, ow = out_size or (h, w)
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", rate, "-i", "pipe:0",
           "-filter_complex", graph, "-map", "[out]", "-fps_mode", "passthrough",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
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

    writer = threading.Thread(target=feed, daemon=True)
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    writer.start()
    reader.start()
    data = proc.stdout.read()
    writer.join()
    reader.join()
    rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"ffmpeg failed ({rc}) on graph {graph!r}: {b''.join(err).decode(errors='replace')[-300:]}")
    frame_bytes = oh * ow * 3
    n = len(data) // frame_bytes
    if out_frames is None:
        out_frames = t
    if n < out_frames:
        raise RuntimeError(f"ffmpeg returned {n} frames for {out_frames} (graph {graph!r})")
    return np.frombuffer(data[: out_frames * frame_bytes], np.uint8).reshape(out_frames, oh, ow, 3).copy()


class FFmpegPeer(Peer):
    def unavailable(self, ctx) -> str | None:
        if ffmpeg_path() is None:
            return "ffmpeg is not on PATH"
        return None


# ---- denoisers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DenoiseFilter:
    filter: str        # ffmpeg filter name
    param: str         # the tuned parameter, as ffmpeg names it
    pix_fmt: str       # working pixel format inside ffmpeg
    lo: float          # valid range of the parameter
    hi: float
    prior: float       # first guess of the best value per unit of noise sigma (0-255 scale)
    tune_frames: int   # consecutive frames it is tuned on
    description: str

    def graph(self, value: float | str) -> str:
        """The graph at strength `value` (a string goes in verbatim: "{v}" gives the template
        recorded in the tuning cache)."""
        v = value if isinstance(value, str) else f"{float(value):g}"
        if self.filter == "bm3d":
            # Two-stage BM3D as in ffmpeg's documentation: a basic (hard-threshold) estimate, then
            # the Wiener stage guided by it. group=1: on davis-dog crops at noise 25 (ffmpeg 5.1)
            # groups of 8-16 blocks scored 5-10 dB worse at every sigma tried and cost 3-8x the time.
            common = "block=4:bstep=4:range=9:group=1"
            return (f"[0:v]format={self.pix_fmt},split[a][b];"
                    f"[a]bm3d=sigma={v}:{common}:estim=basic[basic];"
                    f"[b][basic]bm3d=sigma={v}:{common}:estim=final:ref=1,format=rgb24[out]")
        core = f"hqdn3d=luma_spatial={v}" if self.filter == "hqdn3d" else f"nlmeans=s={v}:p=7:r=15"
        if self.pix_fmt.startswith("yuv"):
            return (f"[0:v]scale=flags={SWS}:out_color_matrix=bt601:out_range=pc,format={self.pix_fmt},{core},"
                    f"scale=flags={SWS}:in_color_matrix=bt601:in_range=pc,format=rgb24[out]")
        return f"[0:v]format={self.pix_fmt},{core},format=rgb24[out]"


# Names and descriptions are part of the tuning recipe: changing them retunes (the cache misses).
# Tuning frame counts: hqdn3d is temporal and needs a run of frames to act as on the full clip;
# the per-frame filters are slow at 854x480 and need fewer.
DENOISERS = {
    "hqdn3d": DenoiseFilter("hqdn3d", "luma_spatial", "yuv444p", 0.5, 252.0, 1.2, 12,
                            "ffmpeg hqdn3d (spatio-temporal); luma_spatial tuned, chroma and temporal strengths "
                            "derived by ffmpeg (cs = 0.75 ls, lt = 1.5 ls, ct = lt cs / ls)"),
    "ffmpeg-nlmeans": DenoiseFilter("nlmeans", "s", "gbrp", 1.0, 30.0, 0.7, 3,
                                    "ffmpeg nlmeans (per frame, patch 7, research window 15); strength s tuned"),
    "bm3d": DenoiseFilter("bm3d", "sigma", "gbrp", 0.5, 5000.0, 5.0, 3,
                          "ffmpeg bm3d per frame, basic + final (Wiener) estimate, 16x16 blocks, step 4, "
                          "group 1; sigma tuned (its scale is not the noise std)"),
}


def _psnr_rgb(ref_u8: np.ndarray, out_u8: np.ndarray) -> float:
    from restore.metrics.psnr import psnr_rgb

    return psnr_rgb(ref_u8.reshape(-1, *ref_u8.shape[-2:]), out_u8.reshape(-1, *out_u8.shape[-2:]))


class FFmpegDenoiser(FFmpegPeer):
    tasks = ("denoise", "deblock")

    def unsuited(self, task) -> str | None:
        if task.kind == "deblock":
            # hqdn3d is a classic compression-noise cleaner (issue #14's peer list); the others are not
            return None if self.name in DEBLOCK_DENOISERS else "not a deblocking peer (hqdn3d is)"
        if task.sigma is None:
            return "its strength is tuned per noise sigma; a compression task has none"
        return None

    def __init__(self, name: str):
        self.name = name
        self.spec = DENOISERS[name]
        self.description = self.spec.description

    def tuned(self, sigma: float, ctx, dataset) -> dict:
        """The cache entry of the strength tuned at `sigma` on `dataset` (see the module docstring)."""
        spec = self.spec
        total = dataset.full_length()
        k = min(spec.tune_frames, total)
        start = (total - k) // 2
        ref = dataset.load_range(start, start + k)
        noisy = add_noise(ref, sigma, TUNE_SEED)
        ff = ffmpeg_path()
        recipe = {"clip": dataset.name, "frames": [start, start + k], "size": list(ref.shape[1:3]),
                  "noise_seed": TUNE_SEED, "sigma": float(sigma), "search": SEARCH, "param": spec.param,
                  "description": spec.description, "ffmpeg_filter": spec.filter, "graph": spec.graph("{v}"),
                  "ffmpeg": ff}
        cache = TuningCache(ctx.tuning_cache)
        return tune(self.name, float(sigma), lambda v: _psnr_rgb(ref, run_graph(noisy, spec.graph(v), ffmpeg=ff)),
                    guess=spec.prior * sigma, lo=spec.lo, hi=spec.hi, recipe=recipe, cache=cache,
                    retune=ctx.retune, log=ctx.log)

    def build(self, task, ctx, dataset):
        if task.kind == "deblock":
            spec = self.spec
            return build_codec_tuned(self.name, spec.graph, spec.param, spec.lo, spec.hi,
                                     DEBLOCK_DENOISERS[self.name] * task.crf, task, ctx, dataset)
        entry = self.tuned(task.sigma, ctx, dataset)
        value = float(entry["value"])
        graph = self.spec.graph(value)

        def run(frames_u8):
            return run_graph(frames_u8, graph)

        fr = entry["recipe"]["frames"]
        run.params = {self.spec.param: value, "tuned on": f"{dataset.name} frames {fr[0]}-{fr[1] - 1}, seed {TUNE_SEED}"}
        if value >= self.spec.hi or value <= self.spec.lo:
            run.params["note"] = "at the filter's limit"
        return run


# ---- compression artefacts (the deblock task) -----------------------------------------------------
# Peers of issue #14: ffmpeg's deblock, spp, pp7 and hqdn3d, each with one parameter tuned per codec
# and CRF for best Y-PSNR on *other clips* of the benchmark's data encoded the same way (the middle
# frames of the clip itself when the data has one clip only, which the settings column says).
# Filters run in full-range yuv444p (accurate conversions, as hqdn3d above): the 8x8 luma grid of
# the decoded frames is where the codec put it; spp / pp7 get a fixed qp (rawvideo has no QP table).

DEBLOCK_DENOISERS = {"hqdn3d": 0.1}   # first guess of luma_spatial per CRF unit
DEBLOCK_TUNE_FRAMES = 6

_YUV_IN = f"[0:v]scale=flags={SWS}:out_color_matrix=bt601:out_range=pc,format=yuv444p,"
_YUV_OUT = f",scale=flags={SWS}:in_color_matrix=bt601:in_range=pc,format=rgb24[out]"


@dataclass(frozen=True)
class DeblockFilter:
    param: str
    lo: float
    hi: float
    per_crf: float     # first guess per CRF unit
    template: str      # filter with {v}
    integer: bool
    description: str

    def graph(self, value: float | str) -> str:
        if isinstance(value, str):
            v = value
        else:
            v = f"{int(round(float(value)))}" if self.integer else f"{float(value):g}"
        if "{a}" in self.template:  # deblock: one multiplier on ffmpeg's default thresholds
            if isinstance(value, str):
                core = self.template.format(a=f"0.098*{v}", b=f"0.05*{v}")
            else:
                m = float(value)
                core = self.template.format(a=f"{min(1.0, 0.098 * m):.4g}", b=f"{min(1.0, 0.05 * m):.4g}")
        else:
            core = self.template.format(v=v)
        return _YUV_IN + core + _YUV_OUT


DEBLOCKERS = {
    "ffmpeg-deblock": DeblockFilter("threshold multiplier", 0.1, 20.0, 0.1,
                                    "deblock=filter=strong:block=8:alpha={a}:beta={b}:gamma={b}:delta={b}", False,
                                    "ffmpeg deblock (strong, 8x8 blocks); one multiplier on its default alpha "
                                    "0.098 / beta, gamma, delta 0.05 tuned per CRF"),
    "spp": DeblockFilter("qp", 1, 63, 0.3, "spp=quality=4:qp={v}:mode=hard", True,
                         "ffmpeg spp (shifted 8x8 DCT hard thresholding, quality 4); qp tuned per CRF"),
    "pp7": DeblockFilter("qp", 1, 63, 0.3, "pp7=qp={v}:mode=medium", True,
                         "ffmpeg pp7 (7x7 DCT thresholding, medium mode); qp tuned per CRF"),
}


def _psnr_y(ref_u8: np.ndarray, out_u8: np.ndarray) -> float:
    from restore.metrics.psnr import psnr_y

    return psnr_y(ref_u8.reshape(-1, *ref_u8.shape[-2:]), out_u8.reshape(-1, *out_u8.shape[-2:]))


def build_codec_tuned(name: str, graph_of, param: str, lo: float, hi: float, guess: float, task, ctx, dataset):
    """The filter `graph_of(value)` with its value tuned for `task` (codec, CRF) on another clip."""
    from ..protocols import crop_to_multiple, encode_crf

    tune_ds = dataset.others[0] if getattr(dataset, "others", None) else dataset
    total = tune_ds.full_length()
    k = min(DEBLOCK_TUNE_FRAMES, total)
    start = (total - k) // 2
    ref = crop_to_multiple(tune_ds.load_range(start, start + k), 2)
    coded = encode_crf(ref, task.codec, task.crf)
    ff = ffmpeg_path()
    recipe = {"clip": tune_ds.name, "frames": [start, start + k], "size": list(ref.shape[1:3]), "codec": task.codec,
              "crf": task.crf, "search": SEARCH, "param": param, "metric": "psnr_y", "graph": graph_of("{v}"),
              "ffmpeg": ff}
    entry = tune(f"{name}/{task.codec}", float(task.crf),
                 lambda v: _psnr_y(ref, run_graph(coded, graph_of(v), ffmpeg=ff)),
                 guess=min(max(guess, lo), hi), lo=lo, hi=hi, recipe=recipe, cache=TuningCache(ctx.tuning_cache),
                 retune=ctx.retune, log=ctx.log, level="CRF")
    value = float(entry["value"])
    graph = graph_of(value)
    if "{v}" in graph_of("{v}") and graph_of(round(value)) == graph:  # integer parameters (spp, pp7 qp)
        value = float(round(value))

    def run(frames_u8):
        return run_graph(frames_u8, graph, ffmpeg=ff)

    where = "other clip" if tune_ds is not dataset else "same clip, middle frames (no other clip in the data)"
    run.params = {param: value, "tuned on": f"{tune_ds.name} frames {start}-{start + k - 1} ({where})"}
    if value >= hi or value <= lo:
        run.params["note"] = "at the filter's limit"
    return run


class FFmpegDeblocker(FFmpegPeer):
    tasks = ("deblock",)

    def __init__(self, name: str):
        self.name = name
        self.spec = DEBLOCKERS[name]
        self.description = self.spec.description

    def build(self, task, ctx, dataset):
        spec = self.spec
        return build_codec_tuned(self.name, spec.graph, spec.param, spec.lo, spec.hi, spec.per_crf * task.crf,
                                 task, ctx, dataset)


# ---- scaling and interpolation ------------------------------------------------------------------

class FFmpegLanczos(FFmpegPeer):
    name = "ffmpeg-lanczos"
    tasks = ("upscale",)
    scales = (2, 3, 4)
    description = "ffmpeg scale filter, Lanczos (swscale, a = 3), in planar RGB"

    def build(self, task, ctx, dataset):
        s = task.scale

        def run(frames_u8):
            h, w = frames_u8.shape[1:3]
            graph = f"[0:v]format=gbrp,scale={w * s}:{h * s}:flags=lanczos+{SWS},format=rgb24[out]"
            return run_graph(frames_u8, graph, out_size=(h * s, w * s))

        return run


class FFmpegMinterpolate(FFmpegPeer):
    name = "minterpolate"
    tasks = ("interpolate",)
    description = ("ffmpeg minterpolate, motion-compensated (mi_mode=mci, mc_mode=aobmc, me_mode=bidir, vsbmc=1, "
                   "scd=none), frame rate multiplied, in yuv444p")
    # minterpolate takes only YUV: full-chroma yuv444p with accurate conversions, as for hqdn3d.
    GRAPH = (f"[0:v]scale=flags={SWS}:out_color_matrix=bt601:out_range=pc,format=yuv444p,"
             "minterpolate=fps={fps}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1:scd=none,"
             f"scale=flags={SWS}:in_color_matrix=bt601:in_range=pc,format=rgb24[out]")

    def build(self, task, ctx, dataset):
        def run(first_u8, second_u8, t=0.5):
            # Each pair on its own (pairs may be unrelated scenes). minterpolate emits nothing for a
            # two-frame input (it looks one frame ahead), so the second frame is repeated: 25 fps
            # (a, b, b) in, 25 d fps out for t = n / d; output n is the frame at t.
            frac = Fraction(t).limit_denominator(12)
            graph = self.GRAPH.replace("{fps}", str(25 * frac.denominator))
            outs = []
            for a, b in zip(first_u8, second_u8):
                outs.append(run_graph(np.stack([a, b, b]), graph, out_frames=frac.denominator)[frac.numerator])
            return np.stack(outs)

        return run


def ffmpeg_peers() -> list[Peer]:
    return ([FFmpegDenoiser(n) for n in DENOISERS] + [FFmpegDeblocker(n) for n in DEBLOCKERS]
            + [FFmpegLanczos(), FFmpegMinterpolate()])

"""Pass 2 of enhance(): decode, restore chunk by chunk, interpolate and encode, on three threads.

restore_pass() runs the threads and the resume work folder's segments; ChunkRunner runs the
spatial stages on one chunk, keeps each stage's anchors for the next, and emits the output frames
of the timeline (timeline.py), interpolated where they fall between source frames.
"""
from __future__ import annotations

import inspect
import queue
import sys
import threading
import time

import numpy as np

from ..chunks import ChunkPlan
from ..errors import MediaError


class _Progress:
    def __init__(self, progress, total: int):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.done = 0
        self.total = total
        if progress is True and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", desc="restoring", dynamic_ncols=True,
                            file=sys.stderr, smoothing=0.1)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _takes_start_index(fn) -> bool:
    """Whether a restorer accepts start_index= (the absolute index of its first frame, from which
    diffusion restorers derive their noise seed: a resumed run then draws the same noise as an
    uninterrupted one). Older or third-party restorers do not, and are called without it."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "start_index" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())



# Frames the decoder may run ahead of the restorer, and output frames the restorer may run ahead
# of the encoder: bounded, so memory stays a few chunks whatever the video's length.
DECODE_AHEAD_CHUNKS = 1
ENCODE_QUEUE_FRAMES = 64
ENCODE_QUEUE_BYTES = 256 << 20


def encode_queue_frames(frame_bytes: int) -> int:
    """Output frames (float32) the encoder queue holds: 64, fewer for big frames (4K: 2 GiB)."""
    return max(4, min(ENCODE_QUEUE_FRAMES, ENCODE_QUEUE_BYTES // max(1, frame_bytes)))


class _Stop(Exception):
    """Raised inside a pipeline thread when the main thread gives up."""


def _put(q: queue.Queue, item, stop: threading.Event, other: "_Worker | None" = None) -> None:
    """q.put that gives up when the run stops or the thread at the other end died."""
    while True:
        if stop.is_set():
            raise _Stop()
        if other is not None:
            other.check()
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _Worker(threading.Thread):
    """A pipeline thread whose exception is handed to the main thread (check())."""

    def __init__(self, name, target):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self):
        try:
            self._target_fn()
        except _Stop:
            pass
        except BaseException as err:  # handed over, re-raised in the main thread
            self.error = err

    def check(self) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            raise err


def restore_pass(src, out, plan, times, schedule, stages, writer, out_dtype, work, done_chunks,
                  progress, decode, to_float, from_float, seams=None, profile=None) -> None:
    """Pass 2: replay the chunks a work folder already holds, restore the rest chunk by chunk,
    interpolate, encode.

    Three threads overlap: a decoder (source frames into a queue at most one chunk ahead), the
    restorer (this thread: the model stages and interpolation) and an encoder (output frames from
    a bounded queue into the final encoder and the work folder's segments, plus the chunk
    commits, in order). Models and codecs release the GIL, so a fast method is not held up by
    I/O. Only the encoder thread touches the writers until it has been joined."""
    profile = profile if profile is not None else {}
    bar = _Progress(progress, len(times))
    stop = threading.Event()
    todo = plan.chunks[done_chunks:]
    in_q: queue.Queue = queue.Queue(maxsize=max(1, DECODE_AHEAD_CHUNKS * plan.max_len))
    out_q: queue.Queue = queue.Queue(maxsize=encode_queue_frames(writer.width * writer.height * 12))
    enc_busy = [0.0]

    def decoder():
        frames = decode(src)
        try:
            skip = todo[0].start if todo else 0
            need = todo[-1].end if todo else 0
            n = 0
            # Frames before the first chunk left to do are decoded and dropped: their restored
            # anchors come from the work folder, and seeking is not frame-exact in every format.
            if need:
                for f in frames:
                    if n >= skip:
                        _put(in_q, to_float(f.image), stop)
                    n += 1
                    if n >= need:
                        break
            _put(in_q, None, stop)
        finally:
            frames.close()

    def encoder():
        seg = None
        seg_times: list[float] = []
        try:
            while True:
                try:
                    item = out_q.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                t0 = time.perf_counter()
                kind = item[0]
                if kind == "frame":
                    frame = from_float(item[1], out_dtype)
                    writer.write(frame, item[2])
                    if seg is not None:
                        seg.write(frame)
                        seg_times.append(item[2])
                elif kind == "segment":
                    seg, seg_times = _segment_writer(work, item[1], writer, out_dtype), []
                elif kind == "commit":
                    if seg.frames_written:
                        seg.close()
                    else:
                        seg.abort()
                    seg = None
                    work.commit(item[1], seg_times, item[2])
                elif kind == "end":
                    return
                enc_busy[0] += time.perf_counter() - t0
        finally:
            if seg is not None:
                seg.abort()

    dec = _Worker("restore-decode", decoder)
    enc = _Worker("restore-encode", encoder)

    def stop_threads():
        stop.set()
        for th in (enc, dec):
            if th.is_alive():
                th.join()

    try:
        with writer:
            try:
                _restore_chunks(src, plan, times, schedule, stages, writer, work, done_chunks, todo,
                                decode, bar, profile, seams, stop, in_q, out_q, dec, enc)
                t0 = time.perf_counter()
                enc.join()
                enc.check()
                profile["encode_drain"] = time.perf_counter() - t0
                dec.join()
                dec.check()
            finally:
                # Error or Ctrl-C included: the threads stop before `with writer` removes the
                # files they might still be writing.
                stop_threads()
            t0 = time.perf_counter()
        profile["close"] = time.perf_counter() - t0  # flush, remux of audio/subtitles, rename
        profile["encode"] = enc_busy[0]
    finally:
        stop_threads()
        bar.close()


def _restore_chunks(src, plan, times, schedule, stages, writer, work, done_chunks, todo, decode,
                    bar, profile, seams, stop, in_q, out_q, dec, enc) -> None:
    """The restorer thread's part of restore_pass."""
    def emit(img: np.ndarray, t: float) -> None:
        t0 = time.perf_counter()
        _put(out_q, ("frame", img, t), stop, enc)
        profile["encode_wait"] = profile.get("encode_wait", 0.0) + time.perf_counter() - t0

    runner = ChunkRunner(plan, stages.get("denoise"), stages.get("upscale"),
                          stages.get("interpolate"), schedule, emit, seams=seams, profile=profile,
                          deblocker=stages.get("deblock"))
    if done_chunks:
        t0 = time.perf_counter()
        _replay(work, done_chunks, writer, decode)
        runner.load_state(work.state())
        bar.update(plan.chunks[done_chunks - 1].end)
        profile["replay"] = time.perf_counter() - t0
    dec.start()
    enc.start()
    decoded = todo[0].start if todo else 0
    for chunk in todo:
        buf = []
        t0 = time.perf_counter()
        while len(buf) < len(chunk):
            dec.check()
            try:
                img = in_q.get(timeout=0.1)
            except queue.Empty:
                if not dec.is_alive():
                    dec.check()
                    break
                continue
            if img is None:
                break
            buf.append(img)
            decoded += 1
        profile["decode_wait"] = profile.get("decode_wait", 0.0) + time.perf_counter() - t0
        if len(buf) < len(chunk):
            raise MediaError(f"decoded {decoded} frames on the second pass but {len(times)} "
                             "on the first", src)
        if work is not None:
            _put(out_q, ("segment", chunk.index), stop, enc)
        runner.run(chunk, np.stack(buf))
        if work is not None:
            _put(out_q, ("commit", chunk.index, runner.state()), stop, enc)
        bar.update(len(chunk))
    runner.finish()
    _put(out_q, ("end",), stop, enc)


def _segment_writer(work, k: int, writer, out_dtype):
    from ..io import VideoWriter

    # FFV1 stores planar RGB exactly (bgr0 for 8 bits, gbrp16le for 16): the frames read back
    # are the very arrays given to the final encoder.
    return VideoWriter(work.segment_path(k), codec="ffv1", width=writer.width, height=writer.height,
                       bit_depth=16 if np.dtype(out_dtype).itemsize > 1 else 8, fps=25,
                       copy_audio=False, copy_subtitles=False, copy_attachments=False, overwrite=True)


def _replay(work, done_chunks: int, writer, decode) -> None:
    """Feed the frames of the committed chunks to the final encoder, with their exact times."""
    for k in range(done_chunks):
        times = work.times(k)
        if not len(times):
            continue
        n = 0
        for f in decode(work.segment_path(k)):
            if n >= len(times):
                break
            writer.write(f.image, float(times[n]))
            n += 1
        if n != len(times):
            raise MediaError(f"resume work folder is damaged (chunk {k}: {n} of {len(times)} frames); "
                             f"delete {work.path} and run again", work.output)


class _Timed:
    """A restorer that adds its wall time to profile["model_<task>"] (the profile's split between
    the model and everything else is what `restore enhance --profile` reports)."""

    def __init__(self, fn, profile: dict, name: str):
        self.fn, self.profile, self.key = fn, profile, f"model_{name}"

    def __call__(self, *args, **kw):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kw)
        finally:
            self.profile[self.key] = self.profile.get(self.key, 0.0) + time.perf_counter() - t0


class ChunkRunner:
    """Runs the spatial stages on a chunk, keeps anchors, and emits interpolated output frames."""

    def __init__(self, plan: ChunkPlan, denoiser, upscaler, interpolator, schedule, emit, *,
                 seams=None, profile: dict | None = None, deblocker=None):
        self.plan = plan
        named = (("deblock", deblocker), ("denoise", denoiser), ("upscale", upscaler), ("interpolate", interpolator))
        self._indexed = {name: fn is not None and _takes_start_index(fn) for name, fn in named}
        self.profile = profile if profile is not None else {}
        self.deblocker, self.denoiser, self.upscaler, self.interpolator = (
            None if fn is None else _Timed(fn, self.profile, name) for name, fn in named)
        self.schedule = schedule
        self.emit = emit
        self.seams = seams  # restore.seams.SeamMeter, or None
        self.keep = max(plan.overlap, 0)
        self.tails: dict[str, dict[int, np.ndarray]] = {"deblock": {}, "denoise": {}, "upscale": {}}
        self.prev: tuple[int, np.ndarray] | None = None  # last restored frame not yet emitted

    def state(self) -> dict[str, np.ndarray]:
        """Everything the next chunk needs (anchors, held frame), as exact arrays (resume)."""
        d: dict[str, np.ndarray] = {}
        for name, tail in self.tails.items():
            idx = sorted(tail)
            d[f"{name}_idx"] = np.asarray(idx, dtype=np.int64)
            if idx:
                d[f"{name}_frames"] = np.stack([tail[i] for i in idx])
        if self.prev is not None:
            d["prev_idx"] = np.asarray([self.prev[0]], dtype=np.int64)
            d["prev_frame"] = self.prev[1]
        return d

    def load_state(self, d: dict[str, np.ndarray]) -> None:
        for name in self.tails:
            idx = [int(i) for i in d.get(f"{name}_idx", [])]
            frames = d.get(f"{name}_frames")
            self.tails[name] = {i: frames[n] for n, i in enumerate(idx)} if idx else {}
        self.prev = (int(d["prev_idx"][0]), d["prev_frame"]) if "prev_idx" in d else None

    def _stage(self, name, fn, chunk, frames):
        if fn is None:
            return frames
        tail = self.tails[name]
        anchors = None
        if chunk.anchors and all(a in tail for a in chunk.anchors):
            anchors = np.stack([tail[a] for a in chunk.anchors])
        kw = {"start_index": chunk.start} if self._indexed[name] else {}
        out = np.asarray(fn(frames, anchors=anchors, **kw), dtype=np.float32)
        if out.shape[0] != frames.shape[0]:
            raise RuntimeError(f"{name} method returned {out.shape[0]} frames for {frames.shape[0]}")
        self.tails[name] = {chunk.start + i: out[i] for i in range(max(0, len(out) - self.keep), len(out))}
        return out

    def run(self, chunk, frames: np.ndarray) -> None:
        inputs = frames
        frames = self._stage("deblock", self.deblocker, chunk, frames)
        frames = self._stage("denoise", self.denoiser, chunk, frames)
        frames = self._stage("upscale", self.upscaler, chunk, frames)
        if self.seams is not None:
            t0 = time.perf_counter()
            self.seams.add_chunk(chunk.start, inputs, frames)
            self.profile["seams"] = self.profile.get("seams", 0.0) + time.perf_counter() - t0
        # Pairs (i, i+1) whose gap can now be filled: the held frame from the previous chunk and
        # every pair inside this chunk. The chunk's last frame waits for the next chunk.
        seq = ([self.prev] if self.prev is not None else []) + \
              [(chunk.start + i, frames[i]) for i in range(len(frames))]
        self._fill(seq)
        self.prev = seq[-1]

    def finish(self) -> None:
        if self.prev is not None:
            i, img = self.prev
            for _frac, t in self.schedule[i]:  # after the last frame: repeats within its duration
                self.emit(img, t)
            self.prev = None

    def _fill(self, seq) -> None:
        from ..ops.flow import FLOW_CACHE_BYTES, flow_cache, pair_flow_bytes

        pairs = list(zip(seq, seq[1:]))
        # One interpolator call per run of consecutive same-shot pairs at one fraction (see
        # _interp_calls), then emit in timeline order. The flow cache makes every fraction of a
        # pair after the first reuse its DIS flow, whichever interpolator estimates it.
        middles: dict[tuple[int, float], np.ndarray] = {}
        if self.interpolator is not None and pairs:
            h, w = pairs[0][0][1].shape[:2]
            with flow_cache(FLOW_CACHE_BYTES):
                for t, run in self._interp_calls(pairs, max(1, FLOW_CACHE_BYTES // pair_flow_bytes(h, w))):
                    first = np.stack([pairs[k][0][1] for k, _ in run])
                    second = np.stack([pairs[k][1][1] for k, _ in run])
                    kw = {"start_index": pairs[run[0][0]][0][0]} if self._indexed["interpolate"] else {}
                    mids = np.asarray(self.interpolator(first, second, t, **kw), dtype=np.float32)
                    for (k, frac), m in zip(run, mids):
                        middles[(k, frac)] = m
        for k, ((i, a), _) in enumerate(pairs):
            for frac, t in self.schedule[i]:
                # fraction 0 is the frame itself; at a scene cut the earlier frame is repeated
                self.emit(middles.get((k, frac), a) if frac > 0 else a, t)

    def _interp_calls(self, pairs, segment: int) -> list[tuple[float, list[tuple[int, float]]]]:
        """Interpolator calls for `pairs`: (t, [(pair position, its exact fraction), ...]).

        The Interpolator contract treats the pairs of one call as consecutive pairs of one shot
        (diffusion interpolators restore them as one temporal window), so a call gets a run of
        consecutive pairs that all want the same fraction: with --fps-multiplier every pair of a
        shot, with --fps (fractions differ from pair to pair) often a single pair. Pairs are
        taken in segments of at most `segment` same-shot pairs, whose flows all fit the flow
        cache, and all fractions of a segment are done before the next one: a cyclic scan over
        more pairs than an LRU holds would never hit it.
        """
        calls: list[tuple[float, list[tuple[int, float]]]] = []
        segments: list[list[int]] = []
        for k, ((i, _), (j, _)) in enumerate(pairs):
            if self.plan.shot_of(i) != self.plan.shot_of(j):
                segments.append([])  # never across a cut: the earlier frame is repeated there
                continue
            if not segments or len(segments[-1]) >= segment or (segments[-1] and segments[-1][-1] != k - 1):
                segments.append([])
            segments[-1].append(k)
        for ks in segments:
            # fractions equal to 1e-6 are one t: --fps grids give the same fraction with float noise
            wanted = [{round(f, 6): f for f, _t in self.schedule[pairs[k][0][0]] if f > 0} for k in ks]
            order = list(dict.fromkeys(key for w in wanted for key in w))
            for key in order:
                run: list[tuple[int, float]] = []
                for k, w in zip(ks, wanted):
                    if key in w:
                        run.append((k, w[key]))
                    elif run:
                        calls.append((run[0][1], run))
                        run = []
                if run:
                    calls.append((run[0][1], run))
        return calls

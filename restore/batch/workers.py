"""Per-item work functions and the wrapper that isolates their failures.

A work function is `fn(input_path: str, output_path: str, options: dict) -> dict` and must be
importable at module level (it is sent to worker processes and Ray tasks by reference). It writes
its output atomically with restore.io.atomic (so the driver can find and delete the temp file of
a killed attempt) and returns a JSON-able dict; `frames_in`, `frames_out`, `seconds` and
`metrics` are recorded in the manifest when present.

- `enhance_worker`: the real one, `restore.enhance` with the batch's config (`preset`) and overrides.
- `transcode_worker`: decode with PyAV and re-encode (optionally resized); a cheap real worker for
  tests and benchmarks of the batch machinery itself.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
import warnings
from fractions import Fraction
from pathlib import Path

from restore.errors import MediaError, RestoreError
from restore.io import local_url, reformat
from restore.io.atomic import atomic_output, sweep_stale_temps, temp_glob


def temp_globs(output: str | os.PathLike) -> list[str]:
    """Globs of the temp files restore.io.atomic creates next to `output` while writing it."""
    return [temp_glob(output)]


def sweep_temps(outputs, wait: float = 0.0) -> list[str]:
    """Delete temp files left next to `outputs` by killed attempts (a SIGKILL gives no chance to
    clean up). Temp files whose writer is alive (it holds their flock) are left alone, so this
    is safe while attempts run; `wait` seconds are given to writers that were just stopped."""
    removed = []
    deadline = time.monotonic() + wait
    for out in outputs:
        removed.extend(sweep_stale_temps(out, wait=max(0.0, deadline - time.monotonic())))
    return removed


def enhance_worker(input_path: str, output_path: str, options: dict) -> dict:
    from restore.device import keep_freed_memory
    from restore.pipeline import enhance

    keep_freed_memory()  # a worker process is an entry point of its own (see restore.device)

    # resume: an attempt that was killed or interrupted left its finished chunks in a work
    # folder next to the output; the next attempt continues from them (restore.io.workdir).
    # the item's warnings (a dropped stream, HDR metadata the encoder cannot write) travel with
    # its result, so the driver shows them as lines of the batch log, whatever process ran it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = enhance(input_path, output_path, preset=options.get("preset", "default"),
                         overwrite=True, progress=False, resume=options.get("resume", True),
                         **options.get("overrides", {}))
    out = result.to_dict()
    out["warnings"] = list(dict.fromkeys(out.get("warnings", []) + [str(w.message) for w in caught]))
    return out


def _container_format(path) -> str:
    from restore.io.codecs import format_for

    return format_for(Path(path))


def transcode_worker(input_path: str, output_path: str, options: dict) -> dict:
    """Decode every frame and re-encode it with libx264 ultrafast (overrides: scale, crf)."""
    import av

    start = time.perf_counter()
    overrides = options.get("overrides", {})
    scale = int(overrides.get("scale") or 1)
    frames_in = 0
    try:
        with av.open(local_url(input_path)) as src:
            if not src.streams.video:
                raise MediaError("no video stream", input_path)
            vin = src.streams.video[0]
            rate = vin.average_rate or Fraction(25)
            with atomic_output(output_path, overwrite=True, input_path=input_path) as tmp, \
                    av.open(local_url(tmp), "w", format=_container_format(output_path)) as dst:
                vout = dst.add_stream("libx264", rate=rate)
                vout.width, vout.height = vin.codec_context.width * scale, vin.codec_context.height * scale
                vout.pix_fmt = "yuv420p"
                vout.options = {"crf": str(overrides.get("crf") or 23), "preset": "ultrafast"}
                for frame in src.decode(vin):
                    frames_in += 1
                    img = reformat(frame, "yuv420p", width=vout.width, height=vout.height)
                    img.pts, img.time_base = frames_in - 1, 1 / rate  # constant rate, from 0
                    for packet in vout.encode(img):
                        dst.mux(packet)
                if frames_in == 0:
                    raise MediaError("no decodable video frames", input_path)
                for packet in vout.encode():
                    dst.mux(packet)
    except av.error.FFmpegError as err:  # corrupt or unsupported input, one line naming the file
        raise MediaError(f"cannot transcode: {getattr(err, 'strerror', None) or err}", input_path) from None
    seconds = time.perf_counter() - start
    return {"output": str(output_path), "frames_in": frames_in, "frames_out": frames_in,
            "seconds": seconds, "fps": frames_in / seconds if seconds else None}


def run_job(fn, job: dict) -> dict:
    """Run one item and turn its failure into data, so one bad file never stops the batch.

    This is the one deliberate broad catch: any exception of the work function belongs to that
    item. RestoreError (bad or unsupported input, bad option) is final for this run; anything
    else might be transient and may be retried up to --max-tries.
    """
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        result = dict(fn(job["input"], job["output"], job["options"]) or {})
    except RestoreError as err:
        return {"id": job["id"], "ok": False, "error": str(err), "detail": None,
                "retryable": False, "worker": worker}
    except Exception as err:  # noqa: BLE001 - see docstring
        msg = " ".join(f"{type(err).__name__}: {err}".split())
        return {"id": job["id"], "ok": False, "error": msg, "detail": traceback.format_exc(),
                "retryable": True, "worker": worker}
    result.setdefault("worker", worker)
    return {"id": job["id"], "ok": True, "result": result, "worker": worker}

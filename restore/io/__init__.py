"""Video I/O on PyAV: probe, streaming decode, encode with stream passthrough, atomic output.

    from restore.io import probe, decode, VideoWriter, atomic_output
    info = probe("clip.mp4")                  # MediaInfo (MediaError on bad input)
    for f in decode("clip.mp4"):              # VideoFrame(image, index, time, pts, key)
        ...
    with VideoWriter("out.mp4", source="clip.mp4", width=w, height=h) as w:
        w.write(image, time)

See docs/ARCHITECTURE.md for the contract and each module's docstring for the details.
"""
from __future__ import annotations

from restore.io._av import local_url, reformat
from restore.io.atomic import atomic_output, check_output_path
from restore.io.codecs import available_encoders
from restore.io.decode import VideoFrame, decode
from restore.io.encode import VideoWriter
from restore.io.mux import remux
from restore.io.probe import MediaInfo, StreamInfo, VideoStreamInfo, probe
from restore.ops.frames import from_float, to_float

__all__ = [
    "probe",
    "decode",
    "VideoWriter",
    "atomic_output",
    "check_output_path",
    "remux",
    "available_encoders",
    "MediaInfo",
    "StreamInfo",
    "VideoStreamInfo",
    "VideoFrame",
    "to_float",
    "from_float",
    "local_url",
    "reformat",
]

"""restore.io: probe / decode / encode round trips, stream passthrough, bad inputs, atomic output.

Clips are tiny (<= 128x96, a few dozen frames) and generated with tests.media; the bundled
sample (640x360, 100 frames, AAC) is used where a real camera-like file matters. ffprobe
(FFmpeg CLI) is the independent cross-check for what the files really contain.
"""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import tracemalloc
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from restore.errors import ConfigError, MediaError, RestoreError
from restore.io import (
    MediaInfo,
    VideoFrame,
    VideoWriter,
    atomic_output,
    decode,
    from_float,
    probe,
    to_float,
)
from restore.io.codecs import available_encoders
from restore.io.mux import MediaWarning
from restore.metrics import psnr as P
from tests.media import (FFMPEG, FFPROBE, add_streams, ffprobe_json, make_audio_only, make_clip,
                         make_hdr10_clip, synthetic_frames)

needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg CLI not installed (subtitle muxing)")


# ----------------------------------------------------------------------------------- helpers
def packets(path, kind: str, index: int = 0):
    """[(pts, dts, bytes)] of one stream, read with PyAV."""
    with av.open(str(path)) as c:
        s = getattr(c.streams, kind)[index]
        return [(p.pts, p.dts, bytes(p)) for p in c.demux(s) if p.size]


def packet_times(path, kind="audio", index=0):
    with av.open(str(path)) as c:
        s = getattr(c.streams, kind)[index]
        return [float(p.pts * p.time_base) for p in c.demux(s) if p.size and p.pts is not None]


def ffprobe_packet_times(path, select="a:0"):
    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", select, "-show_entries",
                          "packet=pts_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True).stdout
    vals = [x.strip().strip(",") for x in out.split()]
    return [float(x) for x in vals if x and x != "N/A"]


def reencode(src, dst, **kw):
    kw.setdefault("preset", "ultrafast")
    with VideoWriter(dst, source=src, **kw) as w:
        for f in decode(src):
            w.write(f.image, f.time)
    return w


def psnr(a, b, peak=255.0):
    return P.psnr(np.asarray(a), np.asarray(b), peak=peak)


def leftovers(directory: Path, keep=()):
    return sorted(p.name for p in Path(directory).iterdir() if p.name not in keep)


# ----------------------------------------------------------------------------------- probe
@needs_ffprobe
def test_probe_sample_matches_ffprobe(sample_clip):
    info = probe(sample_clip)
    v = info.video
    ref = ffprobe_json(sample_clip)
    rv = next(s for s in ref["streams"] if s["codec_type"] == "video")
    ra = next(s for s in ref["streams"] if s["codec_type"] == "audio")
    assert "mp4" in info.container
    assert (v.width, v.height) == (rv["width"], rv["height"]) == (640, 360)
    assert v.codec == rv["codec_name"] == "h264"
    assert v.pix_fmt == rv["pix_fmt"] and v.bit_depth == 8
    assert v.frame_count == int(rv["nb_frames"]) == 100
    assert v.avg_frame_rate == Fraction(rv["avg_frame_rate"]) == 25
    assert v.real_frame_rate == Fraction(rv["r_frame_rate"])
    assert v.is_vfr is False
    assert (v.color_matrix, v.color_primaries, v.color_transfer, v.color_range) == (
        rv["color_space"], rv["color_primaries"], rv["color_transfer"], rv["color_range"])
    assert v.sample_aspect_ratio == 1 and v.rotation == 0
    assert v.duration == pytest.approx(float(rv["duration"]))
    assert info.duration == pytest.approx(float(ref["format"]["duration"]), abs=1e-3)
    audio = info.audio
    assert len(audio) == 1 and audio[0].codec == ra["codec_name"] == "aac"
    assert audio[0].channels == ra["channels"] and audio[0].sample_rate == int(ra["sample_rate"])
    d = json.loads(json.dumps(info.to_dict()))  # JSON-able
    assert d["streams"][0]["avg_frame_rate"] == "25/1" and d["streams"][0]["fps"] == 25.0
    assert [s["type"] for s in d["streams"]] == ["video", "audio"]


@needs_ffmpeg
def test_probe_every_stream_kind(tmp_path):
    base = make_clip(tmp_path / "base.mkv", 10, audio=True, audio_codec="pcm_s16le")
    full = add_streams(base, tmp_path / "full.mkv", srt="1\n00:00:00,000 --> 00:00:00,200\nhi\n",
                       attachment=Path(__file__), attachment_mimetype="text/x-python")
    info = probe(full)
    assert [s.type for s in info.streams] == ["video", "audio", "subtitle", "attachment"]
    assert info.audio[0].codec == "pcm_s16le"
    assert info.subtitles[0].codec in ("subrip", "srt")
    assert info.attachments[0].filename == "test_io.py"
    assert info.attachments[0].mimetype == "text/x-python"
    assert info.video.frame_count is None  # Matroska stores no frame count
    json.dumps(info.to_dict())


@needs_ffprobe
def test_probe_tags_rotation_sar_10bit(tmp_path):
    frames = synthetic_frames(6, 64, 48, dtype=np.uint16)
    clip = make_clip(tmp_path / "hdr.mp4", frames, color_matrix="bt2020nc", color_primaries="bt2020",
                     color_transfer="smpte2084", color_range="tv", rotation=90,
                     sample_aspect_ratio=Fraction(4, 3))
    v = probe(clip).video
    assert (v.pix_fmt, v.bit_depth) == ("yuv420p10le", 10)
    assert (v.color_matrix, v.color_primaries, v.color_transfer, v.color_range) == (
        "bt2020nc", "bt2020", "smpte2084", "tv")
    assert v.rotation == 90
    assert v.sample_aspect_ratio == Fraction(4, 3)
    assert v.display_size == (48, int(round(64 * 4 / 3)))
    rv = ffprobe_json(clip)["streams"][0]
    assert rv["color_transfer"] == "smpte2084" and rv["sample_aspect_ratio"] == "4:3"
    assert rv["side_data_list"][0]["rotation"] == 90


def test_probe_rotate_tag(tmp_path):
    # old phones write a clockwise `rotate` tag instead of a display matrix
    clip = make_clip(tmp_path / "c.mkv", 3)
    tagged = tmp_path / "rot.mkv"
    with av.open(str(clip)) as src, av.open(str(tagged), "w") as out:
        o = out.add_stream_from_template(src.streams.video[0])
        o.metadata["rotate"] = "90"
        for p in src.demux(src.streams.video[0]):
            if p.size:
                p.stream = o
                out.mux(p)
    assert probe(tagged).video.rotation == -90


def test_vfr_detection(tmp_path):
    cfr = make_clip(tmp_path / "cfr.mp4", 12)
    times = np.cumsum([0] + [0.04, 0.04, 0.12, 0.02, 0.04, 0.2, 0.04, 0.033, 0.04, 0.06, 0.04])
    vfr = make_clip(tmp_path / "vfr.mp4", 12, times=times)
    assert probe(cfr).video.is_vfr is False
    assert probe(vfr).video.is_vfr is True
    # 29.97 fps in Matroska's millisecond clock alternates 33/34 ms: still constant
    ntsc = make_clip(tmp_path / "ntsc.mkv", 40, fps=Fraction(30000, 1001))
    assert probe(ntsc).video.is_vfr is False


# ----------------------------------------------------------------------------------- decode
@needs_ffprobe
def test_decode_sample_streams_frames_times_and_key_flags(sample_clip):
    it = decode(sample_clip)
    assert inspect.isgenerator(it)
    frames_bytes = 360 * 640 * 3
    tracemalloc.start()
    n = 0
    keys, times = [], []
    try:
        for f in it:
            assert isinstance(f, VideoFrame)
            assert f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8
            assert f.index == n
            keys.append(f.key)
            times.append(f.time)
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 100
    assert peak < 12 * frames_bytes  # streaming: a handful of frames alive, never the clip
    assert times == pytest.approx([i / 25 for i in range(100)], abs=1e-6)
    out = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=key_frame", "-of", "csv=p=0", str(sample_clip)],
                         check=True, capture_output=True, text=True).stdout.split()
    assert keys == [x.strip(",") == "1" for x in out]
    assert keys[0] and keys[50]  # the sample has a key frame every 50 frames


def test_decode_thumbnails_for_analysis(sample_clip):
    thumbs = list(decode(sample_clip, size=(64, 36), gray=True, max_frames=10))
    assert len(thumbs) == 10
    assert thumbs[0].image.shape == (36, 64) and thumbs[0].image.dtype == np.uint8
    full = next(decode(sample_clip)).image.astype(np.float64)
    grey = full @ np.array([0.2126, 0.7152, 0.0722])  # BT.709 luma of the RGB frame
    small = grey.reshape(36, 10, 64, 10).mean(axis=(1, 3))
    assert np.abs(small - thumbs[0].image).mean() < 6  # a faithful miniature, not noise
    rgb_small = next(decode(sample_clip, size=(32, 18)))
    assert rgb_small.image.shape == (18, 32, 3)


def test_decode_missing_pts_falls_back_to_frame_rate(tmp_path, sample_clip):
    raw = tmp_path / "raw.h264"  # an elementary stream has no container timestamps
    with av.open(str(sample_clip)) as src, av.open(str(raw), "w", format="h264") as out:
        o = out.add_stream_from_template(src.streams.video[0])
        for i, p in enumerate(src.demux(src.streams.video[0])):
            if p.size and i < 12:
                p.stream = o
                out.mux(p)
    frames = list(decode(raw))
    assert len(frames) >= 10
    assert all(f.pts is None for f in frames)
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(len(frames))])


def test_decode_mkv_without_frame_count(tmp_path):
    clip = make_clip(tmp_path / "c.webm", 15, codec="libsvtav1") if "libsvtav1" in available_encoders() \
        else make_clip(tmp_path / "c.mkv", 15)
    info = probe(clip)
    assert info.video.frame_count is None
    assert info.video.estimated_frames == 15
    frames = list(decode(clip))
    assert len(frames) == 15
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(15)], abs=1e-3)


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libsvtav1", "mpeg4", "prores_ks", "libvpx-vp9"])
def test_decode_codecs(tmp_path, codec):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this PyAV build")
    frames = synthetic_frames(8, 64, 48)
    clip = make_clip(tmp_path / f"{codec}.mkv", frames, codec=codec)
    out = list(decode(clip))
    assert len(out) == 8
    expect_dtype = np.uint16 if probe(clip).video.bit_depth > 8 else np.uint8
    assert out[0].image.dtype == expect_dtype
    got = np.stack([from_float(to_float(f.image), np.uint8) for f in out])
    assert psnr(got, frames) > 24


# ----------------------------------------------------------------------------------- encode
def test_roundtrip_cfr_frame_count_and_timestamps(tmp_path):
    src = make_clip(tmp_path / "src.mp4", 20, width=96, height=64, cuts=[10])
    dst = tmp_path / "out.mp4"
    reencode(src, dst, crf=18)
    a, b = list(decode(src)), list(decode(dst))
    assert len(a) == len(b) == 20
    assert [f.time for f in b] == pytest.approx([f.time for f in a], abs=1e-6)
    assert psnr(np.stack([f.image for f in b]), np.stack([f.image for f in a])) > 30
    assert probe(dst).video.frame_count == 20 and probe(dst).video.avg_frame_rate == 25


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_vfr_preserved(tmp_path, ext):
    times = [0, 0.04, 0.1, 0.3, 0.31, 0.5, 0.52, 0.7, 0.9, 1.0, 1.04, 1.5]
    src = make_clip(tmp_path / f"vfr{ext}", 12, times=times)
    dst = tmp_path / f"out{ext}"
    reencode(src, dst)
    got = [f.time for f in decode(dst)]
    tol = 1e-3 if ext == ".mkv" else 1e-5  # Matroska stores milliseconds
    assert got == pytest.approx(times, abs=tol)
    assert probe(dst).video.is_vfr is True


def test_frame_rate_multiplication_writes_in_between_times(tmp_path):
    src = make_clip(tmp_path / "src.mp4", 10, fps=Fraction(30000, 1001))
    dst = tmp_path / "x3.mp4"
    frames = list(decode(src))
    step = float(Fraction(1001, 30000)) / 3
    with VideoWriter(dst, source=src, fps=Fraction(90000, 1001), preset="ultrafast") as w:
        for f in frames:
            for k in range(3):
                w.write(f.image, f.time + k * step)
    got = [f.time for f in decode(dst)]
    assert len(got) == 30
    assert np.diff(got) == pytest.approx(np.full(29, step), abs=2e-6)
    v = probe(dst).video
    assert v.avg_frame_rate == Fraction(90000, 1001) and not v.is_vfr


def test_audio_passthrough_bit_identical(tmp_path, sample_clip):
    dst = tmp_path / "out.mp4"
    w = reencode(sample_clip, dst, width=640, height=360, crf=30)
    assert [a.action for a in w.mux_report] == ["replace", "copy"]
    src_pk, out_pk = packets(sample_clip, "audio"), packets(dst, "audio")
    assert len(src_pk) == len(out_pk) > 100
    assert [p[2] for p in out_pk] == [p[2] for p in src_pk]  # identical bytes
    assert packet_times(dst) == pytest.approx(packet_times(sample_clip), abs=1e-6)
    if FFPROBE:
        assert ffprobe_packet_times(dst) == pytest.approx(ffprobe_packet_times(sample_clip), abs=1e-6)
    info = probe(dst)
    assert info.audio[0].codec == "aac" and info.audio[0].channels == 2
    assert info.duration == pytest.approx(probe(sample_clip).duration, abs=0.05)


def test_partial_encode_trims_passthrough_to_the_written_range(tmp_path, sample_clip):
    dst = tmp_path / "preview.mp4"
    with VideoWriter(dst, source=sample_clip, preset="ultrafast", crf=30) as w:
        for f in decode(sample_clip):
            if 25 <= f.index < 50:  # one second from t=1s
                w.write(f.image, f.time)
    t = packet_times(dst)
    assert t[0] == pytest.approx(1.0, abs=0.03) and t[-1] == pytest.approx(2.0, abs=0.03)
    kept = {p[2] for p in packets(dst, "audio")}
    assert kept <= {p[2] for p in packets(sample_clip, "audio")}  # still copied, not re-encoded
    assert [f.time for f in decode(dst)][0] == pytest.approx(1.0)


def test_pcm_audio_into_mp4_is_converted_with_warning_and_copied_into_mkv(tmp_path):
    src = make_clip(tmp_path / "pcm.mkv", 25, audio=True, audio_codec="pcm_s16le")
    with pytest.warns(MediaWarning, match="pcm_s16le -> aac"):
        reencode(src, tmp_path / "out.mp4")
    a = probe(tmp_path / "out.mp4").audio
    assert len(a) == 1 and a[0].codec == "aac"
    t_src, t_out = packet_times(src), packet_times(tmp_path / "out.mp4")
    assert t_out[0] == pytest.approx(t_src[0], abs=0.03)  # still starts with the video
    assert a[0].duration == pytest.approx(1.0, abs=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)
        reencode(src, tmp_path / "out.mkv")
    assert packets(tmp_path / "out.mkv", "audio") == packets(src, "audio")


@needs_ffmpeg
def test_copy_flags_turn_passthrough_off(tmp_path):
    src = add_streams(make_clip(tmp_path / "a.mkv", 10, audio=True), tmp_path / "s.mkv",
                      srt="1\n00:00:00,000 --> 00:00:00,200\nhi\n")
    reencode(src, tmp_path / "none.mkv", copy_audio=False, copy_subtitles=False)
    assert [s.type for s in probe(tmp_path / "none.mkv").streams] == ["video"]
    reencode(src, tmp_path / "subs.mkv", copy_audio=False)
    assert [s.type for s in probe(tmp_path / "subs.mkv").streams] == ["video", "subtitle"]


@needs_ffmpeg
def test_subtitles_and_attachments(tmp_path):
    srt = "1\n00:00:00,100 --> 00:00:00,300\nhello\n\n2\n00:00:00,320 --> 00:00:00,380\nworld\n"
    font = tmp_path / "font.ttf"
    font.write_bytes(bytes(range(256)) * 4)
    src = add_streams(make_clip(tmp_path / "a.mkv", 10, audio=True), tmp_path / "src.mkv",
                      srt=srt, attachment=font)
    # Matroska keeps everything as is
    reencode(src, tmp_path / "out.mkv")
    out = probe(tmp_path / "out.mkv")
    assert [s.type for s in out.streams] == ["video", "audio", "subtitle", "attachment"]
    assert packets(tmp_path / "out.mkv", "subtitles") == packets(src, "subtitles")
    with av.open(str(tmp_path / "out.mkv")) as c:
        att = c.streams.attachments[0]
        assert bytes(att.data) == font.read_bytes()
        assert att.metadata["filename"] == "font.ttf"
    # MP4: SubRip becomes mov_text (same text and times), attachments are dropped, with warnings
    with pytest.warns(MediaWarning) as rec:
        reencode(src, tmp_path / "out.mp4")
    msgs = " ".join(str(r.message) for r in rec)
    assert "mov_text" in msgs and "attachment" in msgs and "font.ttf" in msgs
    out = probe(tmp_path / "out.mp4")
    assert [s.type for s in out.streams] == ["video", "audio", "subtitle"]
    assert out.subtitles[0].codec == "mov_text"
    if FFMPEG:
        text = subprocess.run([FFMPEG, "-v", "error", "-i", str(tmp_path / "out.mp4"), "-map",
                               "0:s", "-f", "srt", "-"], capture_output=True, text=True).stdout
        assert "00:00:00,100 --> 00:00:00,300" in text and "hello" in text and "world" in text


def test_colour_tags_and_10bit_preserved(tmp_path):
    frames = synthetic_frames(8, 64, 48, dtype=np.uint16)
    src = make_clip(tmp_path / "hdr.mkv", frames, codec="libx265", color_matrix="bt2020nc",
                    color_primaries="bt2020", color_transfer="arib-std-b67", color_range="tv")
    dec = list(decode(src))
    assert dec[0].image.dtype == np.uint16
    dst = tmp_path / "out.mp4"
    w = reencode(src, dst, codec="libx264")
    assert w.pix_fmt == "yuv420p10le"
    v = probe(dst).video
    assert (v.bit_depth, v.pix_fmt) == (10, "yuv420p10le")
    assert (v.color_matrix, v.color_primaries, v.color_transfer, v.color_range) == (
        "bt2020nc", "bt2020", "arib-std-b67", "tv")
    out = list(decode(dst))
    assert out[0].image.dtype == np.uint16
    # 10-bit precision survives: finer than 8-bit steps, and no colour shift (same matrix)
    a, b = np.stack([f.image for f in dec]), np.stack([f.image for f in out])
    assert psnr(a, b, peak=65535.0) > 34
    assert np.abs(a.astype(float).mean(axis=(0, 1, 2)) - b.astype(float).mean(axis=(0, 1, 2))).max() < 300
    if FFPROBE:
        rv = ffprobe_json(dst)["streams"][0]
        assert (rv["pix_fmt"], rv["color_space"], rv["color_transfer"]) == (
            "yuv420p10le", "bt2020nc", "arib-std-b67")


def test_colour_matrix_used_for_conversion(tmp_path):
    # a saturated colour encoded with BT.709 tags must decode to the same RGB, not a 601 shift
    img = np.zeros((32, 32, 3), np.uint8)
    img[...] = (200, 40, 60)
    clip = tmp_path / "c.mp4"
    with VideoWriter(clip, codec="libx264", crf=0, preset="ultrafast", color_matrix="bt709",
                     color_range="tv", color_primaries="bt709", color_transfer="bt709") as w:
        for i in range(3):
            w.write(img, i / 25)
    v = probe(clip).video
    assert v.color_matrix == "bt709" and v.color_range == "tv"
    got = next(decode(clip)).image.astype(int)
    assert np.abs(got - img).max() <= 3


def test_rotation_and_sar_preserved(tmp_path):
    src = make_clip(tmp_path / "r.mp4", 6, rotation=-90, sample_aspect_ratio=Fraction(8, 9))
    dst = tmp_path / "out.mkv"
    reencode(src, dst)
    v = probe(dst).video
    assert v.rotation == -90 and v.sample_aspect_ratio == Fraction(8, 9)
    assert next(decode(dst)).image.shape == (96, 128, 3)  # frames stay as stored


@pytest.mark.parametrize("dtype,depth", [(np.uint8, 8), (np.uint16, 16)])
def test_ffv1_lossless_exact(tmp_path, dtype, depth):
    frames = synthetic_frames(6, 40, 30, dtype=dtype)
    dst = tmp_path / "lossless.mkv"
    with VideoWriter(dst, codec="ffv1", width=40, height=30, bit_depth=depth) as w:
        for i, f in enumerate(frames):
            w.write(f, i / 25)
    out = np.stack([f.image for f in decode(dst)])
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, frames)
    # re-encoding with the lossless file as source keeps its depth and stays exact
    again = tmp_path / "again.mkv"
    w = reencode(dst, again, codec="ffv1")
    assert w.bit_depth == depth and probe(again).video.bit_depth == depth
    np.testing.assert_array_equal(np.stack([f.image for f in decode(again)]), frames)


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libsvtav1", "ffv1"])
@pytest.mark.parametrize("depth", [8, 10])
def test_encoders_and_bit_depths(tmp_path, codec, depth):
    if codec not in available_encoders():
        pytest.skip(f"{codec} not in this PyAV build")
    frames = synthetic_frames(6, 64, 48, dtype=np.uint16 if depth > 8 else np.uint8)
    dst = tmp_path / "out.mkv"
    with VideoWriter(dst, codec=codec, bit_depth=depth, preset="ultrafast", crf=None) as w:
        for i, f in enumerate(frames):
            w.write(f, i / 25)
    v = probe(dst).video
    assert v.bit_depth == depth
    out = np.stack([f.image for f in decode(dst)])
    assert len(out) == 6 and out.dtype == (np.uint16 if depth > 8 else np.uint8)
    peak = 65535.0 if depth > 8 else 255.0
    # tiny frames with sharp saturated edges: 4:2:0 chroma costs a few dB, lossless is exact
    if codec == "ffv1":  # lossless: exact at 8 bits, only the 16 -> 10 bit rounding at 10
        assert psnr(out, frames, peak) > (99 if depth == 8 else 60)
    else:
        assert psnr(out, frames, peak) > 26


@pytest.mark.parametrize("size", [(7, 5), (1, 1)])
def test_odd_and_tiny_sizes(tmp_path, size):
    w_, h_ = size
    frames = synthetic_frames(3, w_, h_)
    dst = tmp_path / "odd.mp4"
    with VideoWriter(dst, codec="libx264", preset="ultrafast", crf=10) as w:
        for i, f in enumerate(frames):
            w.write(f, i / 25)
    assert w.pix_fmt == "yuv444p"  # exact size kept; 4:2:0 cannot hold odd sizes
    v = probe(dst).video
    assert (v.width, v.height) == size
    assert next(decode(dst)).image.shape == (h_, w_, 3)
    # an explicit 4:2:0 request, or an encoder without 4:4:4, is a clear one-line error
    with pytest.raises(ConfigError, match=r"yuv420p needs an even width and height .* 7x5"):
        VideoWriter(tmp_path / "x.mp4", codec="libx264", pix_fmt="yuv420p", width=7, height=5)
    if "libsvtav1" in available_encoders():
        with pytest.raises(ConfigError, match="7x5"):
            VideoWriter(tmp_path / "x.mkv", codec="libsvtav1", width=7, height=5)
    assert leftovers(tmp_path) == ["odd.mp4"]


def test_encoder_refusing_a_size_is_a_clean_error(tmp_path):
    if "libx265" not in available_encoders():
        pytest.skip("no libx265")
    with pytest.raises(ConfigError, match=r"libx265 could not start for 8x8"):
        with VideoWriter(tmp_path / "x.mkv", codec="libx265") as w:
            w.write(np.zeros((8, 8, 3), np.uint8), 0.0)
    assert leftovers(tmp_path) == []


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown codec 'divx'"):
        VideoWriter(tmp_path / "a.mp4", codec="divx", width=8, height=8)
    with pytest.raises(ConfigError, match="unknown preset 'warp'"):
        VideoWriter(tmp_path / "a.mp4", codec="libx264", preset="warp", width=8, height=8)
    with pytest.raises(ConfigError, match="crf 99 out of range"):
        VideoWriter(tmp_path / "a.mp4", crf=99, width=8, height=8)
    with pytest.raises(ConfigError, match="pix_fmt 'rgb24'"):
        VideoWriter(tmp_path / "a.mp4", pix_fmt="rgb24", width=8, height=8)
    with pytest.raises(ConfigError, match="bit_depth 12"):
        VideoWriter(tmp_path / "a.mp4", bit_depth=12, width=8, height=8)
    with pytest.raises(ConfigError, match="ffv1 needs a .mkv"):
        VideoWriter(tmp_path / "a.mp4", codec="ffv1", width=8, height=8)
    with pytest.raises(ConfigError, match="container"):
        VideoWriter(tmp_path / "a.xyz", width=8, height=8)
    VideoWriter(tmp_path / "a.mkv", codec="av1", preset="fast", width=8, height=8)  # aliases ok
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------- bad inputs
def _one_line_naming(err, path):
    msg = str(err.value)
    assert "\n" not in msg
    assert Path(path).name in msg
    return msg


@pytest.fixture
def bad_inputs(tmp_path, sample_clip):
    d = tmp_path / "bad"
    d.mkdir()
    data = sample_clip.read_bytes()
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 20)
    (d / "half_faststart.mp4").write_bytes(data[: len(data) // 2])  # index first, data cut
    moov_last = d / "moov_last.mp4"
    with av.open(str(sample_clip)) as src, av.open(str(moov_last), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for p in src.demux():
            if p.size:
                p.stream = streams[p.stream_index]
                out.mux(p)
    (d / "half_moov_last.mp4").write_bytes(moov_last.read_bytes()[: moov_last.stat().st_size // 2])
    make_audio_only(d / "audio_only.m4a", seconds=0.5)
    # a video stream whose packets are all garbage: zero the payload of the mdat box
    broken = make_clip(d / "garbage.mov", 6, width=64, height=48)
    raw = bytearray(broken.read_bytes())
    pos = 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos:pos + 4], "big")
        if raw[pos + 4:pos + 8] == b"mdat":
            raw[pos + 8:pos + size] = bytes(size - 8)
            break
        pos += size
    broken.write_bytes(bytes(raw))
    return d


@pytest.mark.parametrize("name,pattern", [
    ("missing.mp4", "no such file"),
    (".", "is a directory"),
    ("empty.mp4", "file is empty"),
    ("text.mp4", "not a readable media file"),
    ("half_faststart.mp4", "file is truncated"),
    ("half_moov_last.mp4", "not a readable media file"),
    ("audio_only.m4a", "no video stream"),
    ("garbage.mov", "no decodable frame"),
])
def test_bad_inputs_raise_one_line_media_error(bad_inputs, name, pattern):
    path = bad_inputs / name if name != "." else bad_inputs
    before = sorted(os.listdir(bad_inputs))
    with pytest.raises(MediaError, match=pattern) as err:
        probe(path)
    _one_line_naming(err, path)
    with pytest.raises(MediaError, match=pattern if name != "half_faststart.mp4" else "truncated"):
        for _ in decode(path):
            pass
    assert sorted(os.listdir(bad_inputs)) == before  # input untouched, nothing created


def test_audio_only_can_still_be_described(bad_inputs):
    info = probe(bad_inputs / "audio_only.m4a", require_video=False)
    assert info.video is None and info.audio[0].codec == "aac"


def test_truncated_mkv_decode_yields_then_fails(tmp_path, sample_clip):
    full = tmp_path / "full.mkv"
    with av.open(str(sample_clip)) as src, av.open(str(full), "w") as out:
        o = out.add_stream_from_template(src.streams.video[0])
        for p in src.demux(src.streams.video[0]):
            if p.size:
                p.stream = o
                out.mux(p)
    half = tmp_path / "half.mkv"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    probe(half)  # Matroska has no complete index up front: cannot be caught by probe
    seen = 0
    with pytest.raises(MediaError, match="truncated") as err:
        for _ in decode(half):
            seen += 1
    assert 20 < seen < 100  # what could be decoded was yielded first
    _one_line_naming(err, half)
    with pytest.warns(MediaWarning, match="truncated or damaged"):   # lenient: keeps the frames, says so
        assert len(list(decode(half, strict=False))) == seen


def test_writer_source_errors_name_the_source(tmp_path, bad_inputs):
    with pytest.raises(MediaError, match="text.mp4"):
        VideoWriter(tmp_path / "o.mp4", source=bad_inputs / "text.mp4", width=8, height=8)


# ----------------------------------------------------------------------------------- atomic output
def test_atomic_output_renames_on_success_and_cleans_on_failure(tmp_path):
    final = tmp_path / "out.mp4"
    with atomic_output(final) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".")
        tmp.write_bytes(b"data")
        assert not final.exists()
    assert final.read_bytes() == b"data" and leftovers(tmp_path) == ["out.mp4"]
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with atomic_output(final, overwrite=True) as tmp:
                tmp.write_bytes(b"partial")
                raise exc
        assert final.read_bytes() == b"data" and leftovers(tmp_path) == ["out.mp4"]


def test_atomic_output_checks(tmp_path):
    src = make_clip(tmp_path / "in.mp4", 3)
    with pytest.raises(RestoreError, match="same file as the input"):
        with atomic_output(src, overwrite=True, input_path=src):
            pass
    with pytest.raises(RestoreError, match="same file as the input"):
        with atomic_output(tmp_path / "." / "in.mp4", overwrite=True, input_path=str(src)):
            pass
    with pytest.raises(RestoreError, match="already exists"):
        with atomic_output(src):
            pass
    with pytest.raises(RestoreError, match="does not exist"):
        with atomic_output(tmp_path / "nodir" / "o.mp4"):
            pass
    with pytest.raises(RestoreError, match="not a directory"):
        with atomic_output(src / "o.mp4"):  # parent is a file
            pass
    assert leftovers(tmp_path) == ["in.mp4"]


def test_atomic_output_unwritable_directory(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root ignores permission bits; sysfs refuses new files even to root
        if not Path("/sys/kernel").is_dir():
            pytest.skip("needs a non-root user or /sys")
        ro = Path("/sys")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
    try:
        with pytest.raises(RestoreError, match="not writable") as err:
            with atomic_output(ro / "o.mp4"):
                pass
        _one_line_naming(err, ro / "o.mp4")
        with pytest.raises(RestoreError, match="not writable"):  # before any encoding
            VideoWriter(ro / "o.mp4", width=8, height=8)
    finally:
        if ro != Path("/sys"):
            ro.chmod(0o700)


def test_writer_failure_leaves_nothing(tmp_path):
    src = make_clip(tmp_path / "src.mp4", 12, audio=True)
    keep = ["src.mp4"]
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with VideoWriter(tmp_path / "out.mp4", source=src, preset="ultrafast") as w:
                for f in decode(src):
                    w.write(f.image, f.time)
                    if f.index == 5:
                        raise exc
        assert leftovers(tmp_path) == keep
    # an existing output survives a failed overwrite untouched
    (tmp_path / "out.mp4").write_bytes(b"previous")
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "out.mp4", source=src, overwrite=True) as w:
            w.write(np.zeros((96, 128, 3), np.uint8), 0.0)
            raise RuntimeError("boom")
    assert (tmp_path / "out.mp4").read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["out.mp4", "src.mp4"]
    # writer-level checks happen before any work
    with pytest.raises(RestoreError, match="already exists"):
        VideoWriter(tmp_path / "out.mp4", source=src)
    with pytest.raises(RestoreError, match="same file as the input"):
        VideoWriter(src, source=src, overwrite=True)


def test_write_rejects_wrong_frames(tmp_path):
    with pytest.raises(ValueError, match="expects 64x48"):
        with VideoWriter(tmp_path / "o.mkv", width=64, height=48, preset="ultrafast") as w:
            w.write(np.zeros((48, 64, 3), np.uint8), 0.0)
            w.write(np.zeros((40, 64, 3), np.uint8), 0.04)
    with pytest.raises(ValueError, match="must increase"):
        with VideoWriter(tmp_path / "o.mkv", preset="ultrafast") as w:
            w.write(np.zeros((48, 64, 3), np.uint8), 1.0)
            w.write(np.zeros((48, 64, 3), np.uint8), 0.5)
    assert leftovers(tmp_path) == []


def test_float_frames_are_accepted(tmp_path):
    frames = synthetic_frames(3, 32, 24, dtype=np.float32)
    with VideoWriter(tmp_path / "f.mkv", codec="ffv1") as w:
        for i, f in enumerate(frames):
            w.write(f, i / 25)
    out = np.stack([f.image for f in decode(tmp_path / "f.mkv")])
    np.testing.assert_array_equal(out, from_float(frames, np.uint8))


# ----------------------------------------------------------------------------------- frames
def test_to_float_from_float_roundtrip_and_clipping():
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None].repeat(3, -1)
    f = to_float(u8)
    assert f.dtype == np.float32 and f.min() == 0.0 and f.max() == 1.0
    np.testing.assert_array_equal(from_float(f, np.uint8), u8)
    u16 = np.array([0, 1, 1000, 32768, 65534, 65535], np.uint16)
    np.testing.assert_array_equal(from_float(to_float(u16), np.uint16), u16)
    x = np.array([-0.5, 0.0, 0.5 / 255 + 1e-4, 0.998, 1.0, 7.0, np.nan], np.float32)
    np.testing.assert_array_equal(from_float(x, np.uint8), [0, 0, 1, 254, 255, 255, 0])
    np.testing.assert_array_equal(from_float(u8, np.uint16)[..., 0].ravel()[:3], [0, 257, 514])
    with pytest.raises(TypeError):
        from_float(f, np.int32)


def test_media_info_is_importable_types():
    assert MediaInfo.__dataclass_fields__["streams"]
    assert set(VideoFrame.__dataclass_fields__) >= {"image", "index", "time", "pts", "key"}


def _clip_with_timecode(path, tc="01:00:00:00", frames=10):
    """A MOV whose muxer writes a timecode track (tmcd) starting at `tc`, as cameras do."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.metadata["timecode"] = tc
        for img in synthetic_frames(frames, 64, 48):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode())
    return path


@pytest.mark.parametrize("ext", [".mov", ".mp4", ".mkv"])
def test_the_start_timecode_survives_a_restore(tmp_path, ext):
    from restore.pipeline import enhance

    src = _clip_with_timecode(tmp_path / "cam.mov")
    assert any(s.type == "data" and s.tags.get("timecode") == "01:00:00:00" for s in probe(src).streams)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)   # nothing is reported dropped
        res = enhance(src, tmp_path / f"out{ext}")
    info = probe(res.output)
    assert {k.lower(): v for k, v in info.video.tags.items()}.get("timecode") == "01:00:00:00"
    if ext != ".mkv":   # MOV / MP4: a timecode track of its own, as the source had
        assert any(s.type == "data" and s.tags.get("timecode") == "01:00:00:00" for s in info.streams)


def test_hdr10_static_metadata_is_read_and_written_back_where_the_encoder_can(tmp_path):
    from restore.pipeline import enhance

    src = make_hdr10_clip(tmp_path / "hdr.mkv")
    v = probe(src).video
    assert v.content_light == (1000, 400)
    assert v.mastering_display["red"] == pytest.approx((0.68, 0.32))
    assert v.mastering_display["white"] == pytest.approx((0.3127, 0.329))
    assert (v.mastering_display["max_luminance"], v.mastering_display["min_luminance"]) == pytest.approx((1000, 0.0001))
    out = probe(enhance(src, tmp_path / "x265.mkv", codec="libx265").output).video
    assert out.content_light == (1000, 400) and out.color_transfer == "smpte2084"
    for key, value in v.mastering_display.items():
        assert out.mastering_display[key] == pytest.approx(value, abs=1e-4)
    with pytest.warns(MediaWarning, match="cannot be written by libx264"):
        enhance(src, tmp_path / "x264.mkv", codec="libx264")
    assert probe(tmp_path / "x264.mkv").video.mastering_display is None


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    import errno

    frame = synthetic_frames(1, 64, 48)[0]
    w = VideoWriter(tmp_path / "o.mp4", width=64, height=48)
    w.write(frame)   # opens the (temporary) output
    real = w._out

    class Full:   # the disk fills up under the muxer
        def mux(self, packet):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            real.close()

    w._out = Full()
    with pytest.raises(RestoreError, match=r"o\.mp4: cannot write: the disk is full, \d+ MiB free in .*-o\)$"):
        for _ in range(200):   # the encoder holds frames back before its first packet
            w.write(frame)
    assert list(tmp_path.iterdir()) == []

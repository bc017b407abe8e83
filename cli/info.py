"""`restore info FILE`: the streams of a media file as a table, or JSON."""
from __future__ import annotations

import click


def _size(n: int | None) -> str:
    if not n:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _rate(r) -> str:
    if r is None:
        return "?"
    f = float(r)
    return f"{f:.3f}".rstrip("0").rstrip(".")


def _video_details(s) -> str:
    parts = [f"{s.width}x{s.height}"]
    if s.sample_aspect_ratio and s.sample_aspect_ratio != 1:
        w, h = s.display_size
        parts.append(f"SAR {s.sample_aspect_ratio} (shown {w}x{h})")
    if s.rotation:
        parts.append(f"rotated {s.rotation:g} deg")
    fps = f"{_rate(s.avg_frame_rate)} fps"
    if s.real_frame_rate and s.avg_frame_rate and s.real_frame_rate != s.avg_frame_rate:
        fps += f" (base {_rate(s.real_frame_rate)})"
    parts.append(fps + (" VFR" if s.is_vfr else ""))
    parts.append(f"{s.pix_fmt or '?'} {s.bit_depth or '?'}-bit")
    frames = s.frame_count if s.frame_count else s.estimated_frames
    if frames:
        parts.append(f"{'' if s.frame_count else '~'}{frames} frames")
    colour = "/".join(x or "?" for x in (s.color_matrix, s.color_primaries, s.color_transfer))
    if colour != "?/?/?" or s.color_range:
        parts.append(f"colour {colour} {s.color_range or '?'}")
    if getattr(s, "field_order", None) and s.field_order not in ("progressive", "unknown"):
        parts.append(f"interlaced ({s.field_order})")
    md, cll = getattr(s, "mastering_display", None), getattr(s, "content_light", None)
    if md or cll:
        hdr = [f"mastering {md['max_luminance']:g} cd/m2"] if md else []
        hdr += [f"MaxCLL {cll[0]}, MaxFALL {cll[1]}"] if cll else []
        parts.append(f"HDR10 ({', '.join(hdr)})")
    return ", ".join(parts)


def _stream_details(s) -> str:
    if s.type == "video":
        return _video_details(s)
    if s.type == "audio":
        parts = [f"{s.sample_rate or '?'} Hz", s.channel_layout or f"{s.channels or '?'} ch"]
        if s.sample_format:
            parts.append(s.sample_format)
        return ", ".join(parts)
    if s.type == "attachment":
        return ", ".join(x for x in (s.filename, s.mimetype) if x) or "-"
    return "-"


def render(info) -> str:
    lines = [info.path]
    head = [f"container {info.container}"]
    if info.duration is not None:
        head.append(f"duration {info.duration:.3f} s")
    head.append(f"size {_size(info.size)}")
    if info.bit_rate:
        head.append(f"{info.bit_rate / 1000:.0f} kb/s")
    if info.chapters:
        head.append(f"{info.chapters} chapters")
    lines.append("  " + ", ".join(head))
    rows = [("#", "type", "codec", "lang", "details")]
    for s in info.streams:
        codec = (s.codec or "?") + (f" ({s.profile})" if s.profile else "")
        rows.append((str(s.index), s.type, codec, s.language or "-", _stream_details(s)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print everything probe() found as JSON on stdout.")
@click.option("--json-file", "-o", "json_path", type=click.Path(dir_okay=False),
              help="Write that JSON to this file (never over FILE; an existing file needs --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --json-file.")
def command(file, as_json, json_path, overwrite):
    """Show the streams, codecs, frame rate and colour tags of FILE.

    Works on any media file FFmpeg reads, audio-only ones included.

    \b
    Examples:
      restore info clip.mp4
      restore info clip.mkv --json | jq '.streams[0].fps'
      restore info clip.mkv -o clip-info.json
    """
    from restore.io import probe

    from restore.cli._output import check_outputs, write_text

    check_outputs({"--json-file": json_path}, inputs=[file], overwrite=overwrite)
    info = probe(file, require_video=False)
    if json_path:
        write_text(json_path, info.to_json(), inputs=[file], overwrite=overwrite)
    if as_json:
        click.echo(info.to_json())
    elif not json_path:
        click.echo(render(info))
    else:
        click.echo(f"wrote JSON: {json_path}")

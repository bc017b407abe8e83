"""Helpers of scripts/validate_models.py: validation data and degradations (data), ffmpeg peer
denoisers (ffmpeg_peers), peer strength tuning with a JSON cache (tuning), metrics (scoring),
method construction (methods), the table sections (sections) and the markdown report (report).

Kept out of the `restore` package on purpose: validation reads ../shared/data, which the product
must never touch at run time.
"""

"""Quality scoring: PSNR (RGB, BT.601 Y, per-plane YUV as ffmpeg), SSIM (Wang 2004), LPIPS
(AlexNet v0.1, shipped weights), temporal consistency (E_warp, flicker), frame alignment,
reports and Bjontegaard deltas. Conventions: docs/scoring.md.

    import restore
    rep = restore.score("ref.mp4", "dist.mp4", lpips=True)   # restore.metrics.score.score
    rep.aggregates["psnr"], rep.summary["ssim"]["mean"]

Submodules are imported on demand, so `import restore.metrics` pulls in neither torch nor OpenCV.
"""

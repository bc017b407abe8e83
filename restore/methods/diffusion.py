"""Registry entries for the shipped conditional video diffusion models (the defaults)."""
from __future__ import annotations

from ..diffusion import zoo
from ..registry import MethodOptions, register


def _kw(opts: MethodOptions) -> dict:
    return dict(steps=opts.steps, start_sigma=opts.start_sigma, seed=opts.seed, tile=opts.tile)


if zoo.available("deblock"):
    @register("deblock", "diffusion", family="diffusion", default=True, card=str(zoo.card_path("deblock")),
              description="Blind video diffusion model for compression artefacts (x264/x265, MPEG-2/4, JPEG); "
                          "strength 0-1 blends it with the input, estimated from the stream when not given.")
    def _deblock(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionDenoiser
        from .deblock import Blended

        model, meta = zoo.load("deblock", opts.device)
        # Blind: the noise-level map sits at the floor (strength=0), as in training, where the
        # codec chain adds no white-noise level to condition on.
        return Blended(DiffusionDenoiser(model, meta, strength=0.0, **_kw(opts)), opts.strength)


if zoo.available("denoise"):
    @register("denoise", "diffusion", family="diffusion", default=True, card=str(zoo.card_path("denoise")),
              description="Conditional video diffusion denoiser over chunks of frames (noise std 0-55, light compression).")
    def _denoise(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionDenoiser

        model, meta = zoo.load("denoise", opts.device)
        return DiffusionDenoiser(model, meta, strength=opts.strength, **_kw(opts))


_SR = [s for s in (2, 4) if zoo.available(f"sr-x{s}")]
if _SR:
    @register("upscale", "diffusion", family="diffusion", default=True, scales=tuple(_SR),
              card=str(zoo.card_path(f"sr-x{_SR[0]}")),
              description="Conditional video diffusion super-resolution, x2 and x4 (separate models).")
    def _upscale(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionUpscaler

        model, meta = zoo.load(f"sr-x{opts.scale}", opts.device)
        return DiffusionUpscaler(model, meta, **_kw(opts))


if zoo.available("interp-x2"):
    @register("interpolate", "diffusion", family="diffusion", default=True, card=str(zoo.card_path("interp-x2")),
              description="Conditional video diffusion frame interpolation on DIS-flow hints, any t in (0,1).")
    def _interpolate(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionInterpolator

        model, meta = zoo.load("interp-x2", opts.device)
        return DiffusionInterpolator(model, meta, **_kw(opts))

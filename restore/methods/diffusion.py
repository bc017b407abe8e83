"""Registry entries for the shipped conditional video diffusion models (the defaults)."""
from __future__ import annotations

from ..diffusion import zoo
from ..registry import MethodOptions, register


def _kw(opts: MethodOptions) -> dict:
    return dict(steps=opts.steps, start_sigma=opts.start_sigma, seed=opts.seed, tile=opts.tile)


_DEBLOCK = zoo.model_name("deblock")
_DENOISE = zoo.model_name("denoise")
_DENOISE_ALIGNED = "denoise-aligned"  # fine-tuned on aligned windows; else the denoiser itself serves them
_SR = {m.scale: m.name for m in zoo.models_for("upscale") if zoo.available(m.name)}
_INTERP = zoo.model_name("interpolate")

if zoo.available(_DEBLOCK):
    @register("deblock", "diffusion", family="diffusion", default=True, card=str(zoo.card_path(_DEBLOCK)), blind=True,
              models=(_DEBLOCK,),
              description="Blind video diffusion model for compression artefacts (x264/x265, MPEG-2/4, JPEG); "
                          "strength 0-1 blends it with the input; auto: full on any lossy stream, off on lossless.")
    def _deblock(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionDenoiser
        from .deblock import Blended

        model, meta = zoo.load(_DEBLOCK, opts.device, opts.precision)
        fuser = meta["inference"].get("fuse_net")
        fuser = zoo.load_fusenet(fuser, opts.device, opts.precision) if fuser else None
        # Blind: the noise-level map sits at the floor (sigma255=0), as in training, where the
        # codec chain adds no white-noise level to condition on; the fusion has its own level.
        # It averages detail away on light encodes, so it is kept in the share of the stream's
        # damage (damage.DamageEstimate.strength: 0 up to QP 26, 1 from about CRF 37) where the
        # caller read the stream, else in the share of the strength asked for.
        share = opts.extra.get("damage")
        share = share if share is not None else opts.strength if opts.strength is not None else 1.0
        return Blended(DiffusionDenoiser(model, meta, sigma255=0.0, fuse_net=fuser, fuse_share=share, **_kw(opts)),
                       opts.strength)


if zoo.available(_DENOISE):
    @register("denoise", "diffusion", family="diffusion", default=True, card=str(zoo.card_path(_DENOISE)),
              models=(_DENOISE,),
              description="Conditional video diffusion denoiser over chunks of frames (noise std 0-55, light compression); "
                          "each restored frame averaged with its motion-aligned restored neighbours, weighted by a small learned network.")
    def _denoise(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionDenoiser

        model, meta = zoo.load(_DENOISE, opts.device, opts.precision)
        fuser = meta["inference"].get("fuse_net")
        fuser = zoo.load_fusenet(fuser, opts.device, opts.precision) if fuser else None
        return DiffusionDenoiser(model, meta, sigma255=opts.strength, fuse_net=fuser, **_kw(opts))

    _ALIGNED = _DENOISE_ALIGNED if zoo.available(_DENOISE_ALIGNED) else _DENOISE

    @register("denoise", "diffusion-aligned", family="diffusion", card=str(zoo.card_path(_ALIGNED)),
              models=(_ALIGNED,),
              description="Video diffusion denoiser on one window per frame, its neighbours motion-aligned "
                          "onto it (DIS flow; model denoise-aligned), restored neighbours fused in: lower LPIPS "
                          "than `diffusion`, PSNR within 0.15 dB of it, at 2.4x the time.")
    def _denoise_aligned(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionDenoiser

        model, meta = zoo.load(_ALIGNED, opts.device, opts.precision)
        return DiffusionDenoiser(model, meta, sigma255=opts.strength, align_radius=1, **_kw(opts))


if _SR:
    @register("upscale", "diffusion", family="diffusion", default=True, scales=tuple(sorted(_SR)),
              card=str(zoo.card_path(_SR[min(_SR)])), models=tuple(_SR[k] for k in sorted(_SR)),
              description="Conditional video diffusion super-resolution, x2 and x4 (separate models).")
    def _upscale(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionUpscaler

        model, meta = zoo.load(zoo.model_name("upscale", opts.scale), opts.device, opts.precision)
        return DiffusionUpscaler(model, meta, **_kw(opts))


if zoo.available(_INTERP):
    @register("interpolate", "diffusion", family="diffusion", default=True, card=str(zoo.card_path(_INTERP)),
              models=(_INTERP,),
              description="Conditional video diffusion frame interpolation on DIS-flow hints, any t in (0,1).")
    def _interpolate(opts: MethodOptions):
        from ..diffusion.restorers import DiffusionInterpolator

        model, meta = zoo.load(_INTERP, opts.device, opts.precision)
        motion = meta["inference"].get("motion")
        motion = zoo.load_motion(motion, opts.device, opts.precision) if motion else None
        return DiffusionInterpolator(model, meta, motion=motion, **_kw(opts))

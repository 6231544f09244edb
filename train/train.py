"""Training of a DCE-Net with its tone head, on a CPU: paired and zero-reference.

    python train/train.py --out runs/default

With --pairs (a folder of low/ and high/ images: ../shared/data/lol-train) each step
trains on a batch of pairs: the low image, or with probability --synthetic the
reference made dark by a physical camera model (realtime.metrics.darken: a random
share of the light, Poisson shot noise at a random full well, Gaussian read noise),
scored against the reference by L1, 1 − SSIM and MSE on a random crop (the net always
sees the whole picture's small copy, as in the engine). With --w-zero > 0 a batch of
random resized crops of --data (unpaired, any exposure) adds Zero-DCE's zero-reference
losses; with --pairs "" those alone train the net, as published.

Logs each loss per step to losses.csv (and a loss-curve PNG per loss at the end),
validates on paired images (--val, PSNR/SSIM against the references) and writes:
    last.pt             resumable state (model, optimizer, step, RNG); --resume continues from it
    model.safetensors   the final model, a self-describing checkpoint (config and recipe inside)
    best.safetensors    the model with the best validation PSNR, when --val is given
Every option is a field of TrainConfig below; the resolved config is printed first.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from losses import (
    color_constancy, exposure_control, illumination_smoothness, spatial_consistency, ssim_loss,
)
from realtime.metrics import darken, psnr, read_pairs, ssim
from realtime.sources import IMAGE_SUFFIXES, read_image
from realtime.model import (
    DCENet, ModelConfig, apply_curves, apply_tone, curve_input, enhance, estimate_maps, save_checkpoint,
)

LOSSES = ("total", "l1", "ssim", "mse", "tv", "spa", "exp", "col")

@dataclass(frozen=True)
class TrainConfig:
    pairs: str = "../shared/data/lol-train"  # folder with low/ and high/ training pairs; "" for none
    data: str = "../shared/data/train"  # unpaired images for the zero-reference losses (read when w_zero > 0)
    val: str = "../shared/data/lol-val"  # folder with low/ and high/ pairs; "" to skip
    out: str = "runs/default"  # where checkpoints, losses.csv and plots go
    # model
    width: int = 12  # hidden channels
    conv: str = "plain"  # "plain" 3x3 or "dwsep"
    shared_curves: bool = True  # 3 maps for all iterations (the fused fast path)
    iterations: int = 8
    long_side: int = 32  # the net sees the frame at this long side
    input_gamma: float = 1.0  # the net sees x ** input_gamma
    denoise_below: int = 64  # dark-region 3x3 denoise before the curves (0 = off); see ModelConfig
    tone: bool = True  # the tone head: black point and gain per channel (see ModelConfig)
    tone_reads_floor: bool = False  # the tone head also reads the small copy's min (its noise floor)
    attenuate_good_light: bool = True  # the engine leaves good light alone (realtime.controls)
    photo_filter: bool = True  # photos get the engine's edge-preserving filter (Enhancer.enhance_photo)
    # paired data
    pair_batch: int = 16
    pair_crop: int = 96  # the losses are computed on a random crop of this size
    synthetic: float = 0.5  # share of pairs whose low image is the reference made dark (physical model)
    scenes: str = ""  # normally lit images (e.g. ../shared/data/train) that serve as references too, made dark
    scene_share: float = 0.0  # share of each batch's pairs drawn from --scenes
    scene_luma_min: float = 0.3  # only scenes whose mean luma lies in [min, max] count as normally lit
    scene_luma_max: float = 0.65
    dark_min: float = 0.02  # synthetic darkening: share of the light, log-uniform in [dark_min, dark_max]
    dark_max: float = 0.2
    full_well_min: float = 200.0  # photons at white, log-uniform
    full_well_max: float = 3000.0
    read_noise_max: float = 4.0  # electrons, uniform from 1
    # unpaired data (zero-reference losses)
    crop: int = 256  # training images are random resized crops of crop x crop
    crop_scale: float = 0.3  # smallest crop area, as a fraction of the image
    # Exposure augmentation: with this probability a crop is darkened by a random factor
    # of its light (log-uniform down to darken_min, in linear light), so that the net also
    # learns from scenes darker than the training set holds (0 = off, as published).
    darken_prob: float = 0.0
    darken_min: float = 0.02
    batch: int = 8
    # optimisation
    steps: int = 3000
    lr: float = 2e-3  # Adam, one-cycle: warm-up over the first 10 %, then cosine down
    weight_decay: float = 1e-4
    grad_clip: float = 1.0  # gradient norm clip (published: 0.1, for the zero-reference losses)
    # paired losses
    w_l1: float = 1.0
    w_ssim: float = 0.5
    w_mse: float = 1.0
    w_tv_pairs: float = 1.0  # smoothness of the maps (mean squared neighbour differences)
    # zero-reference losses (defaults as published for Zero-DCE++), all scaled by w_zero
    w_zero: float = 0.0
    w_spa: float = 1.0
    w_exp: float = 10.0
    w_col: float = 5.0
    w_tv: float = 16000.0  # published: 1600 (Zero-DCE++) / 200 (Zero-DCE); see docs/MODEL.md
    exposure: float = 0.6  # well-exposedness level E
    exposure_patch: int = 16
    # bookkeeping
    seed: int = 0
    eval_every: int = 500
    threads: int = 0  # torch threads; 0 = all cores
    resume: bool = False
    limit_images: int = 0  # use only the first N images and pairs (quick runs, tests); 0 = all


def parse_config(argv: list[str]) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig):
        if f.type == "bool":
            parser.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    return TrainConfig(**vars(parser.parse_args(argv)))


def load_images(folder: Path, limit: int) -> list[np.ndarray]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit:
        paths = paths[:limit]
    images = [im for im in (read_image(p) for p in tqdm(paths, desc="loading", leave=False)) if im is not None]
    if not images:
        sys.exit(f"error: no readable images in {folder}")
    return images


def random_crop(image: np.ndarray, rng: random.Random, cfg: TrainConfig) -> np.ndarray:
    """A random resized crop (area fraction in [crop_scale, 1], aspect 3/4..4/3) with flips."""
    h, w = image.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(cfg.crop_scale, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        ch, cw = int(round(math.sqrt(area / aspect))), int(round(math.sqrt(area * aspect)))
        if ch <= h and cw <= w:
            break
    else:
        ch, cw = min(h, w), min(h, w)
    y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
    crop = cv2.resize(image[y : y + ch, x : x + cw], (cfg.crop, cfg.crop), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    if rng.random() < cfg.darken_prob:
        light = math.exp(rng.uniform(math.log(cfg.darken_min), 0.0))
        crop = (crop * light ** (1 / 2.2)).astype(np.uint8)  # sRGB-ish: scale light, not code values
    return crop


def make_batch(images: list[np.ndarray], rng: random.Random, cfg: TrainConfig) -> torch.Tensor:
    crops = np.stack([random_crop(rng.choice(images), rng, cfg) for _ in range(cfg.batch)])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div_(255)


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)


def load_scenes(cfg: TrainConfig) -> list[np.ndarray]:
    """The normally lit images of --scenes (mean luma within the configured range)."""
    if not cfg.scenes or cfg.scene_share <= 0:
        return []
    images = [im for im in load_images(Path(cfg.scenes), cfg.limit_images)
              if cfg.scene_luma_min <= cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).mean() / 255 <= cfg.scene_luma_max]
    if not images:
        sys.exit(f"error: no normally lit images in {cfg.scenes}")
    return images


def scene_crop(scene: np.ndarray, shape: tuple[int, ...], rng: random.Random) -> np.ndarray:
    """A random crop of `scene` with the aspect of `shape` (H, W, 3), resized to it."""
    h, w = scene.shape[:2]
    scale = rng.uniform(0.5, 1.0) * min(h / shape[0], w / shape[1])
    ch, cw = int(shape[0] * scale), int(shape[1] * scale)
    y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
    return cv2.resize(scene[y : y + ch, x : x + cw], (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def make_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], scenes: list[np.ndarray], rng: random.Random,
               noise: np.random.Generator, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (low, reference) pairs of one size, flipped at random; a share of the
    low images made from the reference by the physical camera model, and a share of the
    references drawn from the normally lit scenes (always made dark)."""
    first = rng.choice(pairs)
    same_size = [p for p in pairs if p[0].shape == first[0].shape]
    lows, highs = [], []
    for _ in range(cfg.pair_batch):
        low, high = rng.choice(same_size)
        from_scene = bool(scenes) and rng.random() < cfg.scene_share
        if from_scene:
            high = scene_crop(rng.choice(scenes), high.shape, rng)
        if from_scene or rng.random() < cfg.synthetic:
            light = math.exp(rng.uniform(math.log(cfg.dark_min), math.log(cfg.dark_max)))
            full_well = math.exp(rng.uniform(math.log(cfg.full_well_min), math.log(cfg.full_well_max)))
            low = darken(high, light, full_well, rng.uniform(1.0, cfg.read_noise_max), noise)
        if rng.random() < 0.5:
            low, high = low[:, ::-1], high[:, ::-1]
        if rng.random() < 0.5:
            low, high = low[::-1], high[::-1]
        lows.append(as_tensor(low))
        highs.append(as_tensor(high))
    return torch.stack(lows), torch.stack(highs)


def run_net(net: DCENet, batch: torch.Tensor, crop: tuple[int, int, int] | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(enhanced, low-resolution α) as the engine computes them: the net sees the whole
    picture's small copy; the tone and curves are applied to `crop` (y, x, size) of it."""
    maps, alpha, black, gain = estimate_maps(net, batch)
    image = curve_input(batch, net.config)  # as the engine does (no gradient flows into the image)
    if crop is not None:
        y, x, size = crop
        maps, image = maps[..., y : y + size, x : x + size], image[..., y : y + size, x : x + size]
    return apply_curves(apply_tone(image, black, gain), maps, net.config.iterations), alpha


def smoothness(alpha: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring α values, both directions."""
    return ((alpha[:, :, 1:] - alpha[:, :, :-1]) ** 2).mean() + ((alpha[..., 1:] - alpha[..., :-1]) ** 2).mean()


def paired_losses(net: DCENet, lows: torch.Tensor, highs: torch.Tensor, rng: random.Random,
                  cfg: TrainConfig) -> dict[str, torch.Tensor]:
    size = min(cfg.pair_crop, lows.shape[2], lows.shape[3])
    y, x = rng.randint(0, lows.shape[2] - size), rng.randint(0, lows.shape[3] - size)
    enhanced, alpha = run_net(net, lows, (y, x, size))
    target = highs[..., y : y + size, x : x + size]
    return {"l1": cfg.w_l1 * (enhanced - target).abs().mean(),
            "ssim": cfg.w_ssim * ssim_loss(enhanced, target),
            "mse": cfg.w_mse * ((enhanced - target) ** 2).mean(),
            "tv": cfg.w_tv_pairs * smoothness(alpha)}


def zero_reference_losses(net: DCENet, batch: torch.Tensor, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    enhanced, alpha = run_net(net, batch)
    batch = curve_input(batch, net.config)
    return {"spa": cfg.w_zero * cfg.w_spa * spatial_consistency(enhanced, batch),
            "exp": cfg.w_zero * cfg.w_exp * exposure_control(enhanced, cfg.exposure, cfg.exposure_patch),
            "col": cfg.w_zero * cfg.w_col * color_constancy(enhanced),
            "tv": cfg.w_zero * cfg.w_tv * illumination_smoothness(alpha)}


def compute_losses(net: DCENet, sources: "Sources", cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Every loss term of one step (zeros for those the recipe leaves out), and their total."""
    parts = {name: torch.zeros(()) for name in LOSSES[1:]}
    if sources.pairs:
        batch = make_pairs(sources.pairs, sources.scenes, sources.rng, sources.noise, cfg)
        parts.update(paired_losses(net, *batch, sources.rng, cfg))
    if sources.images:
        for name, value in zero_reference_losses(net, make_batch(sources.images, sources.rng, cfg), cfg).items():
            parts[name] = parts[name] + value
    parts["total"] = sum(parts.values())
    return parts


@dataclass
class Sources:
    """What the steps draw from: training pairs, unpaired images, and the random generators."""

    pairs: list[tuple[np.ndarray, np.ndarray]]
    scenes: list[np.ndarray]
    images: list[np.ndarray]
    rng: random.Random
    noise: np.random.Generator


@torch.inference_mode()
def validate(net: DCENet, pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Mean PSNR / SSIM of the enhanced low images against their references (uint8 RGB)."""
    scores = []
    for low, high in pairs:
        x = torch.from_numpy(low).permute(2, 0, 1)[None].float() / 255
        y = enhance(net, x)[0][0].permute(1, 2, 0).numpy()
        out = np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)
        scores.append((psnr(out, high), ssim(out, high)))
    return tuple(float(v) for v in np.mean(scores, axis=0))


def plot_losses(csv_path: Path, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(csv_path.open()))
    steps = np.array([int(r["step"]) for r in rows])
    for name in LOSSES:
        values = np.array([float(r[name]) for r in rows])
        if not values.any():
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(steps, values, lw=0.5, alpha=0.4, label="per step")
        k = max(1, len(values) // 50)
        if len(values) >= k:
            smooth = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, lw=1.5, label=f"mean of {k}")
        ax.set(xlabel="step", ylabel=name, title=f"loss: {name}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / f"loss_{name}.png", dpi=100)
        plt.close(fig)


def load_pairs(folder: str, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if not folder:
        return []
    pairs = read_pairs(folder)
    if not pairs:
        sys.exit(f"error: no low/high pairs in {folder}")
    return pairs[:limit] if limit else pairs


def new_net(cfg: TrainConfig) -> DCENet:
    model_cfg = ModelConfig(
        width=cfg.width, conv=cfg.conv, shared_curves=cfg.shared_curves, iterations=cfg.iterations,
        long_side=cfg.long_side, input_gamma=cfg.input_gamma, denoise_below=cfg.denoise_below, tone=cfg.tone,
        tone_reads_floor=cfg.tone_reads_floor,
        attenuate_good_light=cfg.attenuate_good_light, photo_filter=cfg.photo_filter,
    )
    print(f"model: {model_cfg}")
    net = DCENet(model_cfg)
    for m in net.modules():  # as published: N(0, 0.02) weights, zero biases
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
            torch.nn.init.zeros_(m.bias)
    if cfg.tone:  # the tone head starts at black 0 and the gain that brings the mean to TONE_TARGET
        torch.nn.init.zeros_(net.tone.weight)
        torch.nn.init.zeros_(net.tone.bias)
    print(f"parameters: {sum(p.numel() for p in net.parameters())}")
    return net


def main(argv: list[str]) -> None:
    cfg = parse_config(argv)
    print("train config:")
    for key, value in dataclasses.asdict(cfg).items():
        print(f"  {key} = {value!r}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    torch.manual_seed(cfg.seed)
    net = new_net(cfg)
    sources = Sources(load_pairs(cfg.pairs, cfg.limit_images), load_scenes(cfg),
                      load_images(Path(cfg.data), cfg.limit_images) if cfg.w_zero > 0 or not cfg.pairs else [],
                      random.Random(cfg.seed), np.random.default_rng(cfg.seed))
    if not cfg.pairs and cfg.w_zero <= 0:
        cfg = dataclasses.replace(cfg, w_zero=1.0)  # zero-reference training alone, as published
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)

    step, best = 0, -math.inf
    if cfg.resume and (out / "last.pt").exists():
        state = torch.load(out / "last.pt", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sched.total_steps = cfg.steps  # a resumed run may be given more steps: the schedule stretches
        step, best = state["step"], state["best"]
        sources.rng.setstate(state["python_rng"])
        sources.noise.bit_generator.state = state["noise_rng"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step}")

    val = read_pairs(cfg.val) if cfg.val and Path(cfg.val).is_dir() else []
    print(f"{len(sources.pairs)} training pairs, {len(sources.scenes)} scenes, {len(sources.images)} unpaired training images, "
          f"{len(val)} validation pairs")

    csv_path = out / "losses.csv"
    new_log = step == 0 or not csv_path.exists()
    log_file = csv_path.open("w" if new_log else "a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(["step", *LOSSES, "lr", "seconds"])

    def save_state() -> None:
        torch.save(
            {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "step": step, "best": best, "python_rng": sources.rng.getstate(),
             "noise_rng": sources.noise.bit_generator.state, "torch_rng": torch.get_rng_state(),
             "config": dataclasses.asdict(cfg)},
            out / "last.pt",
        )

    meta = {"train_config": dataclasses.asdict(cfg), "command": "python train/train.py " + " ".join(argv),
            "data": {"pairs": cfg.pairs, "scenes": cfg.scenes if sources.scenes else "", "unpaired": cfg.data if sources.images else "", "validation": cfg.val}}
    start = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, desc="train", dynamic_ncols=True)
    net.train()
    while step < cfg.steps:
        losses = compute_losses(net, sources, cfg)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        step += 1
        values = {k: float(v.detach()) for k, v in losses.items()}
        log.writerow([step, *(f"{values[k]:.6g}" for k in LOSSES),
                      f"{sched.get_last_lr()[0]:.3g}", f"{time.perf_counter() - start:.1f}"])
        bar.update(1)
        bar.set_postfix(loss=f"{values['total']:.4f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            net.eval()
            if val:
                p, s = validate(net, val)
                tqdm.write(f"step {step}: val PSNR {p:.2f} dB, SSIM {s:.3f}")
                if p > best:
                    best = p
                    save_checkpoint(out / "best.safetensors", net, step=step, val_psnr=p, val_ssim=s, **meta)
            net.train()
            log_file.flush()
            save_state()
    bar.close()
    log_file.close()
    net.eval()
    seconds = time.perf_counter() - start
    save_checkpoint(out / "model.safetensors", net, step=step, train_seconds=round(seconds), **meta)
    plot_losses(csv_path, out)
    print(f"done: {step} steps in {seconds:.0f} s; wrote {out}/model.safetensors"
          + (f", best val PSNR {best:.2f} dB in best.safetensors" if val else ""))


if __name__ == "__main__":
    main(sys.argv[1:])

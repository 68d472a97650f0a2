"""Epoch-level resume check of `manet train --resume X.pth.tar` against PyTorch (issue: PyTorch's own
checkpoint files, item 4): 2 epochs in PyTorch, saved in the authors' main.py layout, 1 more epoch in
manet == 3 epochs in PyTorch, within PyTorch's own float32 spread.

Usage (tools/.venv-torch):
  python tools/parity/resume_parity.py make OUTDIR [--width 4] [--size 64] [--train-per-class 3]
      [--test-per-class 2] [--batch 21] [--step-size 2] [--seed 50]
  MANET_RESUME_PARITY_DIR=OUTDIR swift test ... --filter ResumeParityCLITests/testConfiguredDirectory

`make` writes OUTDIR:
  data/train/<c>/<k>.png, data/test/<c>/<k>.png   a fixed dataset (PNG: both sides decode the same
                                  pixels), images already at the input size (no resize on either side)
  epoch2.pth.tar                  the authors' checkpoint after 2 epochs of PyTorch float32 (defaults):
                                  {'epoch': 2, 'state_dict' (module. keys), 'best_acc' (tensor),
                                  'optimizer': SGD state_dict with momentum buffers, 'recorder'}
  reference.json                  per epoch of the float32 run: lr, train loss / accuracy, test loss /
                                  accuracy; the float64 run's epoch 3 (index 2); each float32 variant's
                                  distance from float64 at epoch 3 (losses, accuracies, per-tensor
                                  relative L2 of the state_dict tensors in REFERENCE_TENSORS) and the
                                  largest of them; the criterion
  epoch3_float64.safetensors      REFERENCE_TENSORS after epoch 3 in float64

The recipe is the authors' main.py: SGD(lr 0.01, momentum 0.9, weight decay 1e-4), StepLR(step_size,
gamma 0.1) stepped after each epoch, loss beta * CE(local) + (1 - beta) * CE(global) with beta 0.6,
predictions from the fused logits, test after every epoch in eval mode; ImageFolder order (classes
sorted, files sorted), no shuffle, no augmentation (ToTensor only): what `manet train --no-shuffle
--no-augment` feeds. The float32 variants change only rounding (the issue's four runs of
training_parity_full.py: PyTorch's defaults, oneDNN off, input x (1 + 2^-23), one thread); manet passes when each epoch-3
quantity is within SPREAD_FACTOR x the largest variant distance from float64, plus SPREAD_FLOOR.
Deterministic: fixed seeds, torch.use_deterministic_algorithms(True). The committed fixture
fixtures/resume_w4 is `make fixtures/resume_w4` with the defaults (tools/fixtures/make_fixtures.py
--only resume).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import manet_reference as ref  # noqa: E402
from pth_fixtures import RecorderMeter  # noqa: E402  (the authors' recorder stand-in, one definition)
from training_parity_full import ISSUE_VARIANTS, SPREAD_FACTOR, SPREAD_FLOOR, SPREAD_VARIANTS  # noqa: E402

# The issue's four rounding-only runs (training_parity_full.py's larger cross costs 20 runs of 3 epochs).
VARIANTS = {name: SPREAD_VARIANTS[name] for name in ISSUE_VARIANTS}

LR, MOMENTUM, WD, GAMMA, BETA = 0.01, 0.9, 1e-4, 0.1, 0.6
EPOCHS_BEFORE, EPOCHS = 2, 3
# State_dict tensors compared after epoch 3 (the whole state_dict in float64 would not be small).
REFERENCE_TENSORS = ["conv1.weight", "bn1.weight", "bn1.running_mean", "bn1.running_var", "layer1.0.conv1.weight",
                     "layer2.1.conv2.weight", "layer3_1_p1.0.conv1.weight", "layer4_2.1.conv2_2_4.weight",
                     "layer4_2.1.bn2_2_4.running_var", "fc_1.weight", "fc_1.bias", "fc_2.weight", "fc_2.bias"]



def write_dataset(root: Path, per_class: dict, size: int, seed: int) -> None:
    """Smooth random colour fields with a class-dependent bright blob, as PNG."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, count in per_class.items():
        for c in range(7):
            folder = root / split / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                base = np.zeros((size, size, 3))
                for ch in range(3):
                    fx, fy, phase = rng.uniform(0.5, 3, 2).tolist() + [rng.uniform(0, 6.3)]
                    base[..., ch] = 0.45 + 0.2 * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
                cx, cy = 0.2 + 0.6 * ((c % 4) / 3), 0.25 + 0.5 * (c // 4) + rng.uniform(-0.05, 0.05)
                blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.08 ** 2))
                # Nothing saturates (values stay within 0.2-0.95) and noise breaks up flat areas:
                # equal neighbouring activations would make max-pool choices depend on rounding.
                image = base + 0.25 * blob[..., None] * np.array([1.0, 0.6 + 0.05 * c, 0.3]) + rng.normal(0, 0.03, (size, size, 3))
                Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).save(folder / f"{k:03d}.png")


def load_split(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageFolder order (classes sorted, files sorted), ToTensor."""
    images, labels = [], []
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    for index, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            with Image.open(file) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.uint8)
            images.append(torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0))
            labels.append(index)
    return torch.stack(images).contiguous(), torch.tensor(labels, dtype=torch.long)


class Meter:
    """The authors' AverageMeter (loss: Python floats; accuracy: float32 like their tensors)."""

    def __init__(self, float32: bool = False):
        self.float32 = float32
        self.sum, self.count = (np.float32(0) if float32 else 0.0), 0

    def update(self, value, n: int):
        if self.float32:
            self.sum = np.float32(self.sum + np.float32(value) * np.float32(n))
        else:
            self.sum += value * n
        self.count += n

    @property
    def avg(self) -> float:
        return float(np.float32(self.sum / np.float32(self.count))) if self.float32 else self.sum / self.count


def run_epoch(model, optimizer, x, y, batch: int, dtype, train: bool, input_scale: float = 1.0) -> tuple[float, float]:
    model.train(train)
    losses, accuracy = Meter(), Meter(float32=True)
    for a in range(0, len(y), batch):
        images = x[a:a + batch].to(dtype)
        if input_scale != 1.0:
            images = (images * input_scale).contiguous()
        target = y[a:a + batch]
        with torch.set_grad_enabled(train):
            local, glob = model(images)
            loss = BETA * F.cross_entropy(local, target) + (1 - BETA) * F.cross_entropy(glob, target)
        if train:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        n = len(target)
        correct = int((ref.fused_logits(local, glob, BETA).argmax(1) == target).sum())
        losses.update(float(loss.item()), n)
        accuracy.update(np.float32(correct) * np.float32(100.0 / n), n)
    return losses.avg, accuracy.avg


def train(init: dict, args, data, dtype, epochs: int, input_scale: float = 1.0, stop_after: int | None = None):
    """The authors' loop from `init`; returns per-epoch records, the model and optimizer after
    `stop_after` epochs (if given, a copy of the checkpoint there) and at the end."""
    (train_x, train_y), (test_x, test_y) = data
    model = ref.MANet(7, args.width)
    model.load_state_dict(init, strict=True)
    model.to(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.step_size, gamma=GAMMA)
    records, best, saved = [], 0.0, None
    for epoch in range(epochs):
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = run_epoch(model, optimizer, train_x, train_y, args.batch, dtype, True, input_scale)
        with torch.no_grad():
            test_loss, test_acc = run_epoch(model, optimizer, test_x, test_y, args.batch, dtype, False, input_scale)
        best = max(best, test_acc)
        records.append({"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                        "test_loss": test_loss, "test_acc": test_acc})
        scheduler.step()
        if stop_after is not None and epoch + 1 == stop_after:
            saved = {"epoch": epoch + 1,
                     "state_dict": OrderedDict(("module." + k, v.clone()) for k, v in model.state_dict().items()),
                     "best_acc": torch.tensor(best), "optimizer": optimizer.state_dict()}
            saved["optimizer"] = {"state": {k: {"momentum_buffer": v["momentum_buffer"].clone()}
                                            for k, v in saved["optimizer"]["state"].items()},
                                  "param_groups": saved["optimizer"]["param_groups"]}
    return records, model, saved


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def make(args) -> None:
    from safetensors.torch import save_file

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    # PyTorch's defaults for the checkpoint's run (all cores), whoever called this before.
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    write_dataset(out / "data", {"train": args.train_per_class, "test": args.test_per_class}, args.size, args.seed + 1)
    data = (load_split(out / "data" / "train"), load_split(out / "data" / "test"))
    torch.manual_seed(args.seed)
    init = {k: v.clone() for k, v in ref.MANet(7, args.width).state_dict().items()}

    # The run the checkpoint comes from: float32, PyTorch's defaults.
    records, model, saved = train(init, args, data, torch.float32, EPOCHS, stop_after=EPOCHS_BEFORE)
    recorder = RecorderMeter(EPOCHS)
    for r in records[:EPOCHS_BEFORE]:
        recorder.epoch_losses[r["epoch"]] = [r["train_loss"], r["test_loss"]]
        recorder.epoch_accuracy[r["epoch"]] = [r["train_acc"], r["test_acc"]]
    saved["recorder"] = recorder
    import __main__
    __main__.RecorderMeter = RecorderMeter
    torch.save(saved, out / "epoch2.pth.tar")

    # PyTorch's own spread at epoch 3: float64 and the rounding-only float32 variants.
    final = lambda m: {k: m.state_dict()[k].detach().clone() for k in REFERENCE_TENSORS}  # noqa: E731
    records64, model64, _ = train({k: v.double() if v.is_floating_point() else v for k, v in init.items()},
                                  args, data, torch.float64, EPOCHS)
    reference64 = final(model64)
    keys = ["train_loss", "train_acc", "test_loss", "test_acc"]
    variants = {}
    mkldnn = torch.backends.mkldnn.enabled
    for name, variant in VARIANTS.items():
        torch.backends.mkldnn.enabled = variant["onednn"]
        torch.set_num_threads(1 if variant["threads"] == 1 else threads)
        try:
            if name == "default":
                run, m = records, model
            else:
                run, m, _ = train(init, args, data, torch.float32, EPOCHS,
                                  input_scale=1.0 + variant["input_ulps"] * 2.0 ** -23)
        finally:
            torch.backends.mkldnn.enabled = mkldnn
            torch.set_num_threads(threads)
        tensors = final(m)
        variants[name] = {"what": variant["what"], "epoch3": run[-1],
                          "abs_dev": {k: abs(run[-1][k] - records64[-1][k]) for k in keys},
                          "tensor_rel_l2": {k: rel_l2(tensors[k], reference64[k]) for k in REFERENCE_TENSORS}}
    spread = {"abs_dev": {k: max(v["abs_dev"][k] for v in variants.values()) for k in keys},
              "tensor_rel_l2": {k: max(v["tensor_rel_l2"][k] for v in variants.values()) for k in REFERENCE_TENSORS}}
    save_file({k: v.contiguous() for k, v in reference64.items()}, str(out / "epoch3_float64.safetensors"))
    meta = {
        "width": args.width, "size": args.size, "batch": args.batch, "epochs_before": EPOCHS_BEFORE, "epochs": EPOCHS,
        "recipe": {"lr": LR, "momentum": MOMENTUM, "weight_decay": WD, "step_size": args.step_size, "gamma": GAMMA,
                   "beta": BETA},
        "seed": args.seed, "train_per_class": args.train_per_class, "test_per_class": args.test_per_class,
        "float32": records, "float64_epoch3": records64[-1], "variants": variants, "spread": spread,
        "criterion": {"factor": SPREAD_FACTOR, "floor": SPREAD_FLOOR,
                      "rule": "|manet - float64| <= factor * largest variant distance + floor, per quantity and tensor"},
        "torch": torch.__version__, "threads": threads,
    }
    (out / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({"float32": records, "float64_epoch3": records64[-1], "spread": spread}, indent=1))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("outdir")
    m.add_argument("--width", type=int, default=4)
    m.add_argument("--size", type=int, default=64)
    m.add_argument("--train-per-class", type=int, default=3)
    m.add_argument("--test-per-class", type=int, default=2)
    # One batch per epoch by default: with 7 or 14 images per batch, width 4 at 64 px, PyTorch's own
    # float32 runs end epoch 3 1e-3 to 1e-2 apart (BatchNorm over a few 1x1 maps amplifies rounding),
    # which would make the spread too loose to tell a resume without momentum from one with it.
    m.add_argument("--batch", type=int, default=21)
    m.add_argument("--step-size", type=int, default=2)
    m.add_argument("--seed", type=int, default=50)
    return p


def main() -> None:
    args = parser().parse_args()
    if args.command == "make":
        make(args)


if __name__ == "__main__":
    main()

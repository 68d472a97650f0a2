# Trains the PyTorch MA-Net reference and `manet train` on the same synthetic data, same initial weights and recipe, and compares their logs.
"""Usage: tools/.venv-torch/bin/python tools/parity/compare_training.py [--manet PATH] [--work DIR] ...

1. `manet synth` writes DIR/train and DIR/test (seed 1).
2. PyTorch: MANet(7, width) from torch.manual_seed(seed), saved as init.safetensors; trained with
   ImageFolder order (sorted classes, sorted files), no shuffle, no augmentation (PIL bilinear
   Resize((S, S)) + ToTensor), SGD(lr, momentum, weight decay), StepLR, loss
   beta * CE(local) + (1 - beta) * CE(global), predictions from the fused logits; the authors'
   log lines go to pytorch.log.
3. Swift: `manet train --init init.safetensors --no-augment --no-shuffle ...` writes manet.log.
   With --shuffle and/or --augment both sides shuffle every epoch and/or use the paper's train
   transforms (RandomResizedCrop(S, scale 0.08-1, ratio 3/4-4/3) then horizontal flip p 0.5; PIL
   bilinear resize) instead; each side draws from its own generator (PyTorch: torch.Generator
   seeded with --seed; Swift: --seed), so the batches differ and the curves agree only
   statistically, not step for step.
   --parallel runs `manet train` in the background while PyTorch trains (on a loaded machine the
   wall time halves; --threads sets each side's threads); --reuse-data keeps WORK/data.
4. `manet logs pytorch.log manet.log`, then a summary of final / best accuracies and the largest
   per-epoch differences of train loss, test loss and test accuracy.
5. With --seeds 1,2,3: steps 2-4 for each seed (WORK/seed-N, the same data), `manet logs` of all
   runs with their curves in WORK/seeds.svg (labelled PyTorch and manet), and a table per epoch and metric (train loss and
   accuracy, test loss and accuracy): PyTorch's min .. max and mean over the seeds against manet's
   run of each seed and their mean, and the exact Mann-Whitney p of manet's runs against
   PyTorch's; then per metric an exact permutation test over whole runs and the verdict (the rule
   is in the comment above ALPHA). --from-logs redoes step 5 from the logs already in WORK, e.g.
   after groups of seeds ran as separate processes with --reuse-data; it also reads the names
   earlier versions of this script wrote (torch.log, swift.log). --self-test checks the
   statistics on small cases with known answers.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures"))
from manet_reference import MANet  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


# Data -------------------------------------------------------------------------------------------


def list_image_folder(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """ImageFolder's listing: class folders sorted, files sorted within each class."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    samples = []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                samples.append((os.path.join(folder, file), index))
    return classes, samples


def load_tensor(path: str, size: int) -> torch.Tensor:
    """PIL RGB -> Resize((size, size), bilinear) -> [3, size, size] float in [0, 1]."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)


def load_split(root: str, size: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    classes, samples = list_image_folder(root)
    if not samples:
        raise SystemExit(f"no images under {root}")
    images = torch.stack([load_tensor(p, size) for p, _ in samples])
    labels = torch.tensor([c for _, c in samples], dtype=torch.long)
    return classes, images, labels


def load_images(root: str) -> tuple[list[str], list[Image.Image], torch.Tensor]:
    """The decoded RGB images of a split (for per-epoch augmentation) and their labels."""
    classes, samples = list_image_folder(root)
    if not samples:
        raise SystemExit(f"no images under {root}")
    images = []
    for path, _ in samples:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return classes, images, torch.tensor([c for _, c in samples], dtype=torch.long)


def random_resized_crop_box(width: int, height: int, gen: torch.Generator,
                            scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params: (top, left, height, width) of the crop."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=gen))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen)))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return top, left, h, w
    in_ratio = width / height  # fallback: centre crop with the ratio clamped
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augment(image: Image.Image, size: int, gen: torch.Generator) -> torch.Tensor:
    """RandomResizedCrop(size) (PIL bilinear) + RandomHorizontalFlip(0.5) + ToTensor."""
    top, left, h, w = random_resized_crop_box(image.width, image.height, gen)
    crop = image.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR)
    if float(torch.rand(1, generator=gen)) < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    array = np.asarray(crop, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)


def batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


# The authors' meters and log lines --------------------------------------------------------------


class LossMeter:
    def __init__(self):
        self.val, self.sum, self.count = 0.0, 0.0, 0

    def update(self, val: float, n: int):
        self.val = val
        self.sum += val * n
        self.count += n

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0


class AccuracyMeter:
    """float32 arithmetic, as the authors' meter summing float32 tensors."""

    def __init__(self):
        self.val, self.sum, self.count = np.float32(0), np.float32(0), 0

    def update(self, correct: int, n: int):
        self.val = np.float32(correct) * np.float32(100.0 / n)
        self.sum = np.float32(self.sum + self.val * np.float32(n))
        self.count += n

    @property
    def avg(self) -> np.float32:
        return np.float32(self.sum / np.float32(self.count)) if self.count else np.float32(0)


def progress_line(prefix: str, i: int, total: int, loss: LossMeter, acc: AccuracyMeter) -> str:
    index = str(i).rjust(len(str(total)))
    return (f"{prefix}[{index}/{total}]\tLoss {loss.val:.4f} ({loss.avg:.4f})"
            f"\tAccuracy {float(acc.val):6.3f} ({float(acc.avg):6.3f})")


class Log:
    def __init__(self, path: str):
        self.file = open(path, "w")

    def write(self, line: str):
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


# PyTorch run ------------------------------------------------------------------------------------


def loss_and_correct(model, images, labels, beta):
    local, global_ = model(images)
    loss = beta * F.cross_entropy(local, labels) + (1 - beta) * F.cross_entropy(global_, labels)
    fused = beta * local + (1 - beta) * global_
    correct = int((fused.argmax(1) == labels).sum())
    return loss, correct


def save_initial_weights(args, init_path: str) -> None:
    """MANet(7, width) as torch.manual_seed(seed) initialises it: the start of both runs."""
    from safetensors.torch import save_file
    torch.manual_seed(args.seed)
    model = MANet(num_classes=7, width=args.width)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, init_path)


def train_torch(args, init_path: str, log_path: str) -> None:
    torch.set_num_threads(args.threads)
    if args.augment:
        classes, train_images, train_y = load_images(os.path.join(args.work, "data", "train"))
        train_x = None
    else:
        classes, train_x, train_y = load_split(os.path.join(args.work, "data", "train"), args.size)
    test_classes, test_x, test_y = load_split(os.path.join(args.work, "data", "test"), args.size)
    if classes != test_classes or len(classes) != 7:
        raise SystemExit(f"expected the same 7 classes in train and test, got {classes} / {test_classes}")
    from safetensors.torch import load_file
    model = MANet(num_classes=7, width=args.width)
    model.load_state_dict(load_file(init_path), strict=True)

    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.step_size, gamma=args.gamma)
    log = Log(log_path)
    best = np.float32(0)
    n_train_batches = (len(train_y) + args.batch_size - 1) // args.batch_size
    n_test_batches = (len(test_y) + args.batch_size - 1) // args.batch_size
    data_gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        start = time.time()
        log.write(f"Current learning rate: {optimizer.param_groups[0]['lr']}")
        model.train()
        losses, acc = LossMeter(), AccuracyMeter()
        order = torch.randperm(len(train_y), generator=data_gen) if args.shuffle else torch.arange(len(train_y))
        for i, (a, b) in enumerate(batches(len(train_y), args.batch_size)):
            index = order[a:b]
            if args.augment:
                images = torch.stack([augment(train_images[int(k)], args.size, data_gen) for k in index])
            else:
                images = train_x[index]
            loss, correct = loss_and_correct(model, images, train_y[index], args.beta)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.update(loss.item(), b - a)
            acc.update(correct, b - a)
            if i % args.print_freq == 0:
                log.write(progress_line(f"Epoch: [{epoch}]", i, n_train_batches, losses, acc))
        model.eval()
        losses, acc = LossMeter(), AccuracyMeter()
        with torch.no_grad():
            for i, (a, b) in enumerate(batches(len(test_y), args.batch_size)):
                loss, correct = loss_and_correct(model, test_x[a:b], test_y[a:b], args.beta)
                losses.update(loss.item(), b - a)
                acc.update(correct, b - a)
                if i % args.print_freq == 0:
                    log.write(progress_line("Test: ", i, n_test_batches, losses, acc))
        log.write(f" * Accuracy {float(acc.avg):.3f}")
        best = max(best, acc.avg)
        log.write(f"Current best accuracy: {float(best)}")
        scheduler.step()
        log.write(str(time.time() - start))
    log.close()


# Log comparison ---------------------------------------------------------------------------------


def parse_log(path: str) -> list[dict]:
    """Per epoch: last running train loss, last running test loss, test accuracy, best accuracy."""
    epochs: list[dict] = []
    progress = re.compile(r"^(Epoch: \[(\d+)\]|Test: )\[\s*\d+/\d+\]\tLoss \S+ \((\S+)\)\tAccuracy\s+\S+ \(\s*(\S+)\)")
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("Current learning rate"):
                epochs.append({"lr": float(line.split()[-1])})
                continue
            if not epochs:
                continue
            m = progress.match(line)
            if m:
                key = "train" if m.group(1).startswith("Epoch") else "test"
                epochs[-1][f"{key}_loss"] = float(m.group(3))
                epochs[-1][f"{key}_acc_running"] = float(m.group(4))
            elif line.startswith(" * Accuracy"):
                epochs[-1]["test_acc"] = float(line.split()[-1])
            elif line.startswith("Current best accuracy"):
                epochs[-1]["best"] = float(line.split()[-1])
    return epochs


def max_diff(a: list[dict], b: list[dict], key: str) -> float:
    pairs = [(x[key], y[key]) for x, y in zip(a, b) if key in x and key in y]
    return max((abs(x - y) for x, y in pairs), default=float("nan"))


# Main -------------------------------------------------------------------------------------------


def run(cmd: list[str]) -> None:
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def run_seed(args, manet: str, data: str, work: str) -> tuple[str, str]:
    """One PyTorch run and one `manet train` run from the same initial weights (seed args.seed) on
    WORK/data; their logs are WORK/pytorch.log and WORK/manet.log. Prints their comparison."""
    os.makedirs(work, exist_ok=True)
    init_path = os.path.join(work, "init.safetensors")
    torch_log = os.path.join(work, "pytorch.log")
    swift_log = os.path.join(work, "manet.log")
    for path in (torch_log, swift_log):
        if os.path.exists(path):
            os.remove(path)
    save_initial_weights(args, init_path)

    swift_cmd = [manet, "train", "--data", data, "--init", init_path, "--width", str(args.width),
         "--input-size", str(args.size), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
         "--lr", str(args.lr), "--momentum", str(args.momentum), "--weight-decay", str(args.weight_decay),
         "--step-size", str(args.step_size), "--gamma", str(args.gamma), "--beta", str(args.beta),
         *([] if args.augment else ["--no-augment"]), *([] if args.shuffle else ["--no-shuffle"]),
         "--print-freq", str(args.print_freq), "--log", swift_log,
         "--checkpoint-dir", os.path.join(work, "checkpoints"), "--seed", str(args.seed),
         "--threads", str(args.threads)]
    if args.parallel:
        # Both trainings at once (each with --threads): the machine's load, not the recipe, changes.
        print("+ " + " ".join(swift_cmd) + "  (in the background, output in manet.out)", flush=True)
        t0 = time.time()
        with open(os.path.join(work, "manet.out"), "w") as out:
            swift = subprocess.Popen(swift_cmd, stdout=out, stderr=subprocess.STDOUT)
            train_torch(args, init_path, torch_log)
            torch_seconds = time.time() - t0
            finished_first = swift.poll() is not None
            if swift.wait() != 0:
                raise SystemExit(f"manet train failed (exit {swift.returncode}); see {work}/manet.out")
        # The background run's own end is not observed while PyTorch trains: report an upper bound.
        swift_seconds = time.time() - t0
        swift_time_note = "<= " if finished_first else ""
    else:
        t0 = time.time()
        train_torch(args, init_path, torch_log)
        torch_seconds = time.time() - t0
        t0 = time.time()
        run(swift_cmd)
        swift_seconds = time.time() - t0
        swift_time_note = ""

    run([manet, "logs", torch_log, swift_log])

    a, b = parse_log(torch_log), parse_log(swift_log)
    if not a or not b or len(a) != len(b):
        raise SystemExit(f"logs have {len(a)} and {len(b)} epochs")
    print()
    print(f"PyTorch: final test accuracy {a[-1]['test_acc']:.3f}, best {a[-1]['best']:.3f} ({torch_seconds:.0f} s)")
    print(f"Swift:   final test accuracy {b[-1]['test_acc']:.3f}, best {b[-1]['best']:.3f} ({swift_time_note}{swift_seconds:.0f} s)")
    print("per epoch (PyTorch / Swift): train loss, test loss, test accuracy")
    for e, (x, y) in enumerate(zip(a, b)):
        print(f"  epoch {e}: {x['train_loss']:.4f} / {y['train_loss']:.4f}   "
              f"{x['test_loss']:.4f} / {y['test_loss']:.4f}   {x['test_acc']:.3f} / {y['test_acc']:.3f}")
    print(f"max |diff| train loss {max_diff(a, b, 'train_loss'):.4f}, test loss {max_diff(a, b, 'test_loss'):.4f}, "
          f"test accuracy {max_diff(a, b, 'test_acc'):.3f} points")
    return torch_log, swift_log


# Statistics over seeds -------------------------------------------------------------------------
#
# The rule, fixed before any result: with n seeds on each side from one distribution, a manet value
# lands inside PyTorch's min..max with probability (n - 1) / (n + 1) only, so "inside the range" is
# reported but not the verdict. The verdict is a distribution-level test: per metric, an exact
# permutation test over whole runs (a run's curve is one unit, so its epochs' correlation is kept)
# whose statistic is the sum over epochs of |U_e - n1 n2 / 2|, U_e the Mann-Whitney U of the
# manet runs against the PyTorch runs at epoch e (midranks for ties); two-sided by construction.
# manet's curves are within PyTorch's seed spread when every metric's p >= ALPHA / (number of
# metrics) (Bonferroni over the metrics). With n runs a side no p is below 2 / C(2n, n), so fewer
# than 5 seeds give no verdict (4: 0.029 > 0.0125). Per epoch and metric the exact two-sided
# Mann-Whitney p is reported too, with how many rows fall below ALPHA against the ALPHA x rows
# expected when nothing differs (the rows are correlated: a description, not a second verdict).

ALPHA = 0.05
METRICS = (("train_loss", "train loss", "%.4f"), ("train_acc_running", "train acc. %", "%.2f"),
           ("test_loss", "test loss", "%.4f"), ("test_acc", "test acc. %", "%.2f"))


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the values, ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _splits(n: int, k: int) -> np.ndarray:
    """Every way of choosing k of n items, as a 0/1 matrix (C(n, k) rows)."""
    from itertools import combinations
    rows = list(combinations(range(n), k))
    if len(rows) > 2_000_000:
        raise SystemExit(f"too many runs for an exact permutation test ({len(rows)} splits)")
    m = np.zeros((len(rows), n))
    for r, chosen in enumerate(rows):
        m[r, list(chosen)] = 1.0
    return m


def curve_permutation_test(first: list[list[float]], second: list[list[float]]) -> tuple[list[float], list[float], float]:
    """first, second: per run its values over the epochs. Returns per epoch the U of the first
    group against the second and its exact two-sided Mann-Whitney p, and the exact two-sided p of
    the whole-curve statistic sum_e |U_e - n1 n2 / 2| over every relabelling of the runs."""
    n1, n2 = len(first), len(second)
    pooled = np.array(first + second, dtype=float)          # runs x epochs
    ranks = np.stack([midranks(pooled[:, e]) for e in range(pooled.shape[1])], axis=1)
    splits = _splits(n1 + n2, n1)
    u = splits @ ranks - n1 * (n1 + 1) / 2                  # splits x epochs
    centre = n1 * n2 / 2
    observed = ranks[:n1].sum(axis=0) - n1 * (n1 + 1) / 2
    eps = 1e-9
    per_epoch_p = [float(np.mean(np.abs(u[:, e] - centre) >= abs(observed[e] - centre) - eps))
                   for e in range(u.shape[1])]
    total = np.abs(u - centre).sum(axis=1)
    curve_p = float(np.mean(total >= np.abs(observed - centre).sum() - eps))
    return [float(v) for v in observed], per_epoch_p, curve_p


def seed_spread(runs: dict[int, tuple[str, str]]) -> str:
    """Per epoch and metric: PyTorch's min..max and mean over the seeds, manet's value for each
    seed and mean, whether manet's mean and each manet seed lie inside PyTorch's min..max, and the
    exact Mann-Whitney p; then per metric the whole-curve permutation test and the verdict."""
    def complete(epochs: list[dict]) -> list[dict]:  # an unfinished run's last epoch has no test accuracy
        return [e for e in epochs if "test_acc" in e]
    logs = {seed: (complete(parse_log(t)), complete(parse_log(s))) for seed, (t, s) in runs.items()}
    seeds = sorted(logs)
    n = len(seeds)
    epochs = min(min(len(t), len(s)) for t, s in logs.values())
    metrics = [m for m in METRICS if all(m[0] in logs[s][i][e] for s in seeds for i in (0, 1) for e in range(epochs))]
    tests = {}
    for key, _, _ in metrics:
        manet_runs = [[logs[s][1][e][key] for e in range(epochs)] for s in seeds]
        torch_runs = [[logs[s][0][e][key] for e in range(epochs)] for s in seeds]
        tests[key] = curve_permutation_test(manet_runs, torch_runs)
    lines = [f"PyTorch's spread over seeds {seeds} against manet's runs with the same seeds. inside: manet's "
             f"mean over the seeds within PyTorch's min..max; seeds inside: manet runs within it (expected "
             f"{n - 1}/{n + 1} of them when both sides come from one distribution); MW p: exact two-sided "
             "Mann-Whitney p of manet's runs against PyTorch's at that epoch"]
    lines.append("| epoch | metric | PyTorch min .. max | PyTorch mean | manet per seed | manet mean | mean inside | seeds inside | MW p |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    low_rows = 0
    for e in range(epochs):
        for key, name, fmt in metrics:
            t = [logs[s][0][e][key] for s in seeds]
            w = [logs[s][1][e][key] for s in seeds]
            low, high, mean_w = min(t), max(t), sum(w) / len(w)
            inside = sum(low <= v <= high for v in w)
            p = tests[key][1][e]
            low_rows += p < ALPHA
            lines.append(f"| {e} | {name} | {fmt % low} .. {fmt % high} | {fmt % (sum(t) / len(t))} | "
                         f"{' / '.join(fmt % v for v in w)} | {fmt % mean_w} | "
                         f"{'yes' if low <= mean_w <= high else 'no'} | {inside} of {len(w)} | {p:.3f} |")
    rows = epochs * len(metrics)
    lines.append("")
    lines.append(f"rows with MW p < {ALPHA}: {low_rows} of {rows} (expected about {ALPHA * rows:.1f} when nothing differs)")
    threshold = ALPHA / len(metrics)
    lines.append(f"whole-curve permutation test per metric (sum over epochs of |U - n1 n2/2|, every relabelling "
                 f"of the {2 * n} runs; within the spread when p >= {ALPHA}/{len(metrics)} = {threshold:.4f}):")
    smallest = 2 / math.comb(2 * n, n)  # the two splits that put every run of one side above the other
    lines.append(f"  (the smallest p {n} + {n} runs can give is 2/C({2 * n}, {n}) = {smallest:.4f})")
    if smallest >= threshold:
        lines.append(f"verdict: none; with {n} seeds a side no outcome reaches p < {threshold:.4f} (5 seeds a side "
                     f"give at best {2 / math.comb(10, 5):.4f})")
        return "\n".join(lines)
    failed = []
    for key, name, _ in metrics:
        p = tests[key][2]
        lines.append(f"  {name}: p = {p:.4f} -> {'within' if p >= threshold else 'OUTSIDE'}")
        if p < threshold:
            failed.append(name)
    lines.append("verdict: manet's curves are " + ("within PyTorch's seed spread" if not failed
                 else "outside PyTorch's seed spread in " + ", ".join(failed)))
    return "\n".join(lines)


def self_test() -> None:
    """Checks of the statistics against values computed by hand (the exact null distributions of
    small samples), and that a shifted group is found and an exchangeable one is not."""
    def close(a, b):
        return abs(a - b) < 1e-12
    # midranks with ties
    assert list(midranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    # 3 against 3, no ties: U of (1, 2, 4) against (3, 5, 6) is 1; P(|U - 4.5| >= 3.5) = 4/20.
    u, p, curve = curve_permutation_test([[1.0], [2.0], [4.0]], [[3.0], [5.0], [6.0]])
    assert u == [1.0] and close(p[0], 4 / 20) and close(curve, 4 / 20), (u, p, curve)
    # complete separation of 5 against 5: the two extreme splits of C(10, 5) = 252
    a, b = [[float(i)] for i in range(5)], [[float(i)] for i in range(5, 10)]
    _, p, _ = curve_permutation_test(a, b)
    assert close(p[0], 2 / 252), p
    # all values tied: nothing can be more extreme, p = 1
    _, p, curve = curve_permutation_test([[1.0]] * 4, [[1.0]] * 4)
    assert p == [1.0] and curve == 1.0
    # 2 against 2 with a tie: midranks 1, 2.5, 2.5, 4; U of (1, 2) against (2, 3) is 0.5, and the six
    # splits' U are 0.5, 0.5, 2, 2, 3.5, 3.5, so |U - 2| >= 1.5 for 4 of them
    u, p, _ = curve_permutation_test([[1.0], [2.0]], [[2.0], [3.0]])
    assert u == [0.5] and close(p[0], 4 / 6), (u, p)
    # whole curves: one group shifted at every epoch is found; an interleaved one is not
    rng = np.random.default_rng(0)
    base = rng.normal(size=(10, 6))
    shifted = base.copy()
    shifted[:5] += 3.0
    _, _, curve = curve_permutation_test(shifted[:5].tolist(), shifted[5:].tolist())
    assert close(curve, 2 / 252), curve
    _, _, curve = curve_permutation_test(base[0::2].tolist(), base[1::2].tolist())
    assert curve > 0.05, curve
    print("compare_training.py self-test: ok")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manet", default=".build/release/manet", help="manet binary")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "manet_compare_training"), help="working folder (data, logs, weights)")
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--size", type=int, default=64, help="image side and network input size")
    p.add_argument("--train-per-class", type=int, default=40)
    p.add_argument("--test-per-class", type=int, default=10)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--step-size", type=int, default=15)
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--beta", type=float, default=0.6)
    p.add_argument("--print-freq", type=int, default=1)
    p.add_argument("--seed", type=int, default=1, help="seed of the PyTorch initial weights and data order, and manet's --seed")
    p.add_argument("--seeds", default=None, metavar="N,N,...",
                   help="run every seed of the list (each in WORK/seed-N, same data), then print PyTorch's "
                        "per-epoch spread over the seeds against manet's, the tests and the verdict, and draw "
                        "all runs in WORK/seeds.svg")
    p.add_argument("--shuffle", action="store_true", help="shuffle the training set every epoch on both sides")
    p.add_argument("--augment", action="store_true", help="the paper's train transforms on both sides")
    p.add_argument("--threads", type=int, default=2, help="threads of each side")
    p.add_argument("--reuse-data", action="store_true", help="keep WORK/data if it exists (made by an earlier run)")
    p.add_argument("--parallel", action="store_true", help="run `manet train` in the background while PyTorch trains")
    p.add_argument("--from-logs", action="store_true",
                   help="train nothing: compare the logs already in WORK/seed-N (pytorch.log and manet.log, or torch.log and swift.log) for --seeds, "
                        "e.g. after running groups of seeds as separate processes into one WORK")
    p.add_argument("--nuisance", type=float, default=1.0, help="`manet synth --nuisance` of the data (0 clean .. 3 hard)")
    p.add_argument("--self-test", action="store_true", help="check the statistics of the --seeds table and exit")
    args = p.parse_args()
    if args.self_test:
        self_test()
        return

    manet = os.path.abspath(args.manet)
    if not os.access(manet, os.X_OK):
        raise SystemExit(f"manet binary not found at {manet} (build it, or pass --manet)")
    try:
        seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise SystemExit(f"--seeds takes a comma-separated list of integers, got {args.seeds!r}")
    if args.from_logs:
        if seeds is None:
            raise SystemExit("--from-logs needs --seeds")
        runs = {s: seed_logs(os.path.join(args.work, f"seed-{s}")) for s in seeds}
        missing = [path for pair in runs.values() for path in pair if not os.path.isfile(path)]
        if missing:
            raise SystemExit(f"--from-logs: missing {', '.join(missing)}")
        report_seeds(manet, args.work, seeds, runs)
        return
    os.makedirs(args.work, exist_ok=True)
    data = os.path.join(args.work, "data")
    if args.reuse_data and os.path.isdir(os.path.join(data, "train")) and os.path.isdir(os.path.join(data, "test")):
        print(f"reusing {data} (--reuse-data)", flush=True)
    else:
        run([manet, "synth", "--out", data, "--train-per-class", str(args.train_per_class),
             "--test-per-class", str(args.test_per_class), "--size", str(args.size), "--seed", "1",
             "--nuisance", str(args.nuisance), "--overwrite"])
    if seeds is None:
        run_seed(args, manet, data, args.work)
        return
    runs = {}
    for seed in seeds:
        args.seed = seed
        print(f"== seed {seed}", flush=True)
        runs[seed] = run_seed(args, manet, data, os.path.join(args.work, f"seed-{seed}"))
    report_seeds(manet, args.work, seeds, runs)


def seed_logs(folder: str) -> tuple[str, str]:
    """A seed folder's PyTorch and manet logs: pytorch.log and manet.log, or the names earlier
    versions of this script wrote (torch.log, swift.log) when those are what the folder holds."""
    for names in (("pytorch.log", "manet.log"), ("torch.log", "swift.log")):
        pair = (os.path.join(folder, names[0]), os.path.join(folder, names[1]))
        if all(os.path.isfile(path) for path in pair):
            return pair
    return os.path.join(folder, "pytorch.log"), os.path.join(folder, "manet.log")


def report_seeds(manet: str, work: str, seeds: list[int], runs: dict[int, tuple[str, str]]) -> None:
    svg = os.path.join(work, "seeds.svg")
    labels = [arg for _ in seeds for arg in ("--label", "PyTorch")] + [arg for _ in seeds for arg in ("--label", "manet")]
    run([manet, "logs", *[runs[s][0] for s in seeds], *[runs[s][1] for s in seeds], *labels, "--svg", svg])
    print()
    print(seed_spread(runs))


if __name__ == "__main__":
    main()

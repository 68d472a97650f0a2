"""Linear classifiers on raw pixels of a `manet synth` dataset: how far does a linear model get?

Reads the downsampled copies that `manet synth --npy-side N` writes (DIR/train_pixels_N.npy,
DIR/train_labels.npy, and the same for test: every JPEG decoded back and resized with the test
Resize), then fits, on standardised pixels, with numpy only:
  1. ridge least squares onto one-hot targets (closed form, lambda chosen on a held-out 20 % of train);
  2. multinomial softmax regression with L2 (full-batch gradient descent with momentum).
Prints train and test top-1 accuracy of each and the chance level.

    make venv && tools/.venv/bin/python tools/parity/linear_baseline.py --data SYNTH_DIR --side 32
"""
import argparse
import os
import sys

import numpy as np


def load(data, split, side):
    pixels = np.load(os.path.join(data, f"{split}_pixels_{side}.npy"))
    labels = np.load(os.path.join(data, f"{split}_labels.npy"))
    return pixels.reshape(len(pixels), -1).astype(np.float64) / 255.0, labels.astype(np.int64)


def ridge_path(x, y, classes, lams):
    """Ridge solutions for every lambda from one eigendecomposition of the Gram matrix."""
    targets = np.eye(classes)[y]
    xb = np.hstack([x, np.ones((len(x), 1))])
    values, vectors = np.linalg.eigh(xb.T @ xb)
    projected = vectors.T @ (xb.T @ targets)
    return [vectors @ (projected / (values + lam)[:, None]) for lam in lams]


def ridge_predict(w, x):
    return (np.hstack([x, np.ones((len(x), 1))]) @ w).argmax(1)


def softmax_regression(x, y, classes, l2, steps, lr=0.5, momentum=0.9):
    n, d = x.shape
    w = np.zeros((d, classes))
    b = np.zeros(classes)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        logits = x @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        gw = x.T @ g + l2 * w
        gb = g.sum(0)
        vw = momentum * vw - lr * gw
        vb = momentum * vb - lr * gb
        w += vw
        b += vb
    return w, b


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset root written by `manet synth --npy-side N`")
    parser.add_argument("--side", type=int, default=32, help="N of the .npy copies (default 32)")
    parser.add_argument("--steps", type=int, default=300, help="softmax regression gradient steps")
    args = parser.parse_args()

    try:
        x_train, y_train = load(args.data, "train", args.side)
        x_test, y_test = load(args.data, "test", args.side)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}; write the dataset with `manet synth --out {args.data} --npy-side {args.side}`")
    classes = int(max(y_train.max(), y_test.max())) + 1
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    print(f"data: {len(x_train)} train, {len(x_test)} test, {x_train.shape[1]} features ({args.side}x{args.side}x3), "
          f"{classes} classes, chance {100.0 / classes:.1f}%")

    # Ridge: pick lambda on a fixed 80/20 split of train, then refit on all of train.
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x_train))
    cut = int(0.8 * len(order))
    fit, held = order[:cut], order[cut:]
    lams = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5]
    scores = [(ridge_predict(w, x_train[held]) == y_train[held]).mean() for w in ridge_path(x_train[fit], y_train[fit], classes, lams)]
    best = (lams[int(np.argmax(scores))], max(scores))
    w = ridge_path(x_train, y_train, classes, [best[0]])[0]
    print(f"ridge least squares (lambda {best[0]:g}): train {100 * (ridge_predict(w, x_train) == y_train).mean():.1f}%, "
          f"test {100 * (ridge_predict(w, x_test) == y_test).mean():.1f}%")

    best = None
    for l2 in [1e-3, 1e-2, 1e-1]:
        w, b = softmax_regression(x_train[fit], y_train[fit], classes, l2, args.steps, lr=0.05)
        acc = ((x_train[held] @ w + b).argmax(1) == y_train[held]).mean()
        if best is None or acc > best[1]:
            best = (l2, acc)
    w, b = softmax_regression(x_train, y_train, classes, best[0], args.steps, lr=0.05)
    train_acc = ((x_train @ w + b).argmax(1) == y_train).mean()
    test_acc = ((x_test @ w + b).argmax(1) == y_test).mean()
    print(f"softmax regression (L2 {best[0]:g}, {args.steps} steps): train {100 * train_acc:.1f}%, test {100 * test_acc:.1f}%")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A stand-in for a training script: no dependencies, a few seconds at most.

The validation loss is a smooth bowl in log10(lr) with its bottom near lr = 0.01, lower for
adam than for sgd, with mild penalties for batch sizes far from 64 and for dropout far from
0.15. It falls over the epochs toward that value, with a little noise seeded from the
parameters, so the same parameters always give the same numbers and a sweep has a clear optimum
to find.

    python3 train.py --lr=0.01 --batch_size=64 --optimizer=adam
"""

import argparse
import hashlib
import math
import random
import sys
import time

try:
    import sweeper
except ImportError:
    # Run by hand, without the agent's helper on PYTHONPATH.
    sweeper = None


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, required=True, help="learning rate, > 0")
    p.add_argument("--batch_size", type=int, required=True)
    p.add_argument("--optimizer", choices=["adam", "sgd"], required=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--epoch_seconds", type=float, default=0.05, help="simulated time per epoch")
    args = p.parse_args(argv)
    if not args.lr > 0 or math.isinf(args.lr):
        p.error("--lr must be a positive number, got %r" % args.lr)
    if args.batch_size < 1:
        p.error("--batch_size must be at least 1, got %d" % args.batch_size)
    if args.epochs < 1:
        p.error("--epochs must be at least 1, got %d" % args.epochs)
    if not 0.0 <= args.dropout < 1.0:
        p.error("--dropout must be in [0, 1), got %r" % args.dropout)
    return args


def final_val_loss(args):
    """What the loss settles to after enough epochs: the shape a sweep should discover."""
    x = math.log10(args.lr) + 2.0  # 0 at lr = 0.01
    if args.optimizer == "adam":
        bowl = 0.05 + 0.35 * x * x
    else:
        # SGD is less forgiving of a poor learning rate and never quite as good.
        bowl = 0.11 + 0.5 * x * x
    batch = 0.015 * abs(math.log2(args.batch_size / 64.0))
    dropout = 0.2 * (args.dropout - 0.15) ** 2
    return bowl + batch + dropout


def seeded_rng(args):
    # hash() of a str changes between Python processes; a digest does not.
    key = "lr=%r batch_size=%d optimizer=%s dropout=%r" % (args.lr, args.batch_size, args.optimizer, args.dropout)
    return random.Random(int(hashlib.sha256(key.encode()).hexdigest()[:16], 16))


def report(values, step):
    if sweeper is not None:
        sweeper.log(values, step=step)
    else:
        # The same line the helper prints when run by hand, which the agent also parses.
        print(" ".join(["%s=%r" % (k, v) for k, v in values.items()] + ["step=%d" % step]), flush=True)


def main(argv):
    args = parse_args(argv)
    rng = seeded_rng(args)
    target = final_val_loss(args)
    best = math.inf
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.epoch_seconds)
        curve = 1.0 + 4.0 * math.exp(-0.5 * epoch)
        val_loss = target * curve * (1.0 + 0.02 * rng.gauss(0.0, 1.0))
        # Dropout narrows the gap between training and validation loss.
        loss = val_loss * (0.8 + 0.4 * args.dropout) * (1.0 + 0.01 * rng.gauss(0.0, 1.0))
        val_acc = math.exp(-val_loss)
        best = min(best, val_loss)
        report({"epoch": epoch, "loss": loss, "val_loss": val_loss, "val_acc": val_acc}, epoch)
    print("done: best val_loss %.4f after %d epochs" % (best, args.epochs), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A real PyTorch training script for a Sweeper sweep.

It trains a small multilayer perceptron to classify points of a synthetic "spirals" dataset that
it generates itself (no download, works offline), on the GPU it is given (CUDA_VISIBLE_DEVICES,
set by `sweeper agent --gpus`) or on the CPU, and reports validation metrics after every epoch
with Sweeper's helper, so early stopping can act on them.

    python3 train.py --lr=0.003 --hidden=128 --layers=3 --dropout=0.1 --batch_size=256
"""
import argparse
import math
import sys
import time

import torch
from torch import nn

try:
    import sweeper  # on PYTHONPATH under `sweeper agent`
except ImportError:  # run by hand without the agent: print the same metrics as text
    sweeper = None


def spirals(n, classes, noise, generator):
    """Points on `classes` interleaved spiral arms, with Gaussian noise; labels are the arm."""
    per = n // classes
    xs, ys = [], []
    for c in range(classes):
        r = torch.linspace(0.05, 1.0, per)
        theta = r * 4 * math.pi + c * 2 * math.pi / classes
        theta = theta + torch.randn(per, generator=generator) * noise
        xs.append(torch.stack([r * torch.sin(theta), r * torch.cos(theta)], dim=1))
        ys.append(torch.full((per,), c, dtype=torch.long))
    x = torch.cat(xs)
    y = torch.cat(ys)
    perm = torch.randperm(len(x), generator=generator)
    return x[perm], y[perm]


def model(hidden, layers, dropout, classes):
    blocks, width = [], 2
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, classes))
    return nn.Sequential(*blocks)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=27)
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(1234)  # the same data for every trial
    classes = 5
    x, y = spirals(args.samples, classes, noise=0.15, generator=g)
    split = int(0.8 * len(x))
    x_train, y_train = x[:split].to(device), y[:split].to(device)
    x_val, y_val = x[split:].to(device), y[split:].to(device)

    torch.manual_seed(args.seed)
    net = model(args.hidden, args.layers, args.dropout, classes).to(device)
    if args.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    print(f"training on {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'})", flush=True)

    for epoch in range(1, args.epochs + 1):
        started = time.time()
        net.train()
        order = torch.randperm(len(x_train), device=device)
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            logits = net(x_val)
            val_loss = loss_fn(logits, y_val).item()
            val_acc = (logits.argmax(dim=1) == y_val).float().mean().item()
        metrics = {"epoch": epoch, "train_loss": loss.item(), "val_loss": val_loss, "val_acc": val_acc,
                   "epoch_seconds": time.time() - started}
        if sweeper is not None:
            sweeper.log(metrics, step=epoch)
        else:
            print(" ".join(f"{k}={v}" for k, v in metrics.items()) + f" step={epoch}", flush=True)
        if not math.isfinite(val_loss):
            print("diverged", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()

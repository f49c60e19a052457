"""Train a probe model on a synthetic probe task and save it with its recipe.

Usage::

    python -m freqlens.probes.train --task hf --arch cnn --seed 0 --out probe_cnn_hf.safetensors

A ``.safetensors`` output holds the plain state_dict with the recipe as JSON under the metadata key
``recipe``; any other suffix gets a torch file ``{"model": state_dict, "recipe": {...}}`` that loads
with ``torch.load(path, weights_only=True)``. The same seed, thread count and device give bitwise the
same weights: initialisation, data and batch order all come from the seed, and the global RNG state is
restored afterwards.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import timm
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from freqlens.lens import preserved_state
from freqlens.probes import models as _probe_models  # noqa: F401  (registers probe_cnn / probe_vit)
from freqlens.probes.task import get_task, make_split

ARCHS: dict[str, str] = {"cnn": "probe_cnn", "vit": "probe_vit"}
# Per-architecture defaults; every field can be overridden on the command line.
RECIPES: dict[str, dict[str, Any]] = {
    "cnn": dict(epochs=6, lr=3e-3, weight_decay=5e-4, batch_size=128, train_size=8192),
    "vit": dict(epochs=10, lr=2e-3, weight_decay=0.05, batch_size=128, train_size=8192),
}
TEST_SIZE = 2000
TEST_SEED = 0


def train(
    task: str,
    arch: str,
    seed: int = 0,
    epochs: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    batch_size: int | None = None,
    train_size: int | None = None,
    device: str | torch.device = "cpu",
    test_size: int = TEST_SIZE,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``probe_<arch>`` on ``task`` with AdamW and a one-cycle schedule; return it and its recipe.

    Unset hyper-parameters take ``RECIPES[arch]``. The training split is
    ``make_split(task, "train", train_size, seed)``; the recipe's ``test_accuracy`` is measured on
    ``make_split(task, "test", test_size, TEST_SEED)``, which no seed ever trains on.
    """
    get_task(task)
    if arch not in ARCHS:
        raise ValueError(f"unknown probe arch {arch!r}; choose one of {sorted(ARCHS)}")
    given = dict(epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size, train_size=train_size)
    hp = {k: RECIPES[arch][k] if v is None else v for k, v in given.items()}
    if hp["epochs"] < 1 or hp["batch_size"] < 1 or hp["train_size"] < hp["batch_size"]:
        raise ValueError(f"need epochs >= 1 and train_size >= batch_size >= 1, got {hp}")
    device = torch.device(device)

    start = time.perf_counter()
    images, labels = make_split(task, "train", hp["train_size"], seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(ARCHS[arch])
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    steps_per_epoch = hp["train_size"] // hp["batch_size"]  # the last partial batch is dropped
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=hp["lr"], total_steps=hp["epochs"] * steps_per_epoch, pct_start=0.2
    )
    inputs, targets = normalize(images.to(device), model), labels.to(device)  # once for the split, on the device
    order_rng = torch.Generator().manual_seed(seed)
    for _ in range(hp["epochs"]):
        order = torch.randperm(hp["train_size"], generator=order_rng).to(device)  # one copy per epoch
        for step in range(steps_per_epoch):
            idx = order[step * hp["batch_size"] : (step + 1) * hp["batch_size"]]
            loss = F.cross_entropy(model(inputs[idx]), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    seconds = time.perf_counter() - start

    recipe = dict(
        task=task,
        arch=arch,
        model=ARCHS[arch],
        seed=seed,
        **hp,
        optimizer="adamw",
        schedule="onecycle(pct_start=0.2)",
        label_band=list(get_task(task).label_band),
        distractor_band=list(get_task(task).distractor_band),
        test_size=test_size,
        test_seed=TEST_SEED,
        test_accuracy=evaluate(model, task, test_size),
        train_seconds=round(seconds, 1),
        threads=torch.get_num_threads(),
        device=device.type,
        torch=str(torch.__version__),
        timm=timm.__version__,
    )
    return model, recipe


def normalize(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Map task pixels to model inputs with the model's pretrained cfg mean and std."""
    cfg = model.pretrained_cfg
    mean = torch.tensor(cfg["mean"], device=images.device, dtype=images.dtype).view(-1, 1, 1)
    std = torch.tensor(cfg["std"], device=images.device, dtype=images.dtype).view(-1, 1, 1)
    return (images - mean) / std


@torch.no_grad()
def evaluate(model: nn.Module, task: str, n: int = TEST_SIZE, batch_size: int = 500) -> float:
    """Accuracy of ``model``, in eval mode, on the held-out test split of ``task``, rounded to 1e-4."""
    images, labels = make_split(task, "test", n, TEST_SEED)
    param = next(model.parameters())
    correct = 0
    with preserved_state(model):
        model.eval()
        for start in range(0, n, batch_size):
            x = normalize(images[start : start + batch_size].to(param.device, param.dtype), model)
            correct += int((model(x).argmax(dim=1).cpu() == labels[start : start + batch_size]).sum())
    return round(correct / n, 4)


def save_checkpoint(model: nn.Module, recipe: dict[str, Any], path: str | Path) -> None:
    """Write the state_dict and recipe: safetensors (recipe as JSON metadata) or a plain torch file."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file(state, str(path), metadata={"recipe": json.dumps(recipe, sort_keys=True)})
    else:
        torch.save({"model": state, "recipe": recipe}, path)


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe stored in a checkpoint written by ``save_checkpoint``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})["recipe"])
    return torch.load(path, map_location="cpu", weights_only=True)["recipe"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m freqlens.probes.train", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=["hf", "lf"])
    parser.add_argument("--arch", required=True, choices=sorted(ARCHS))
    parser.add_argument("--out", required=True, type=Path, help=".safetensors, or a torch file (.pth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (results depend on it)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, recipe = train(
        args.task,
        args.arch,
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        train_size=args.train_size,
        device=args.device,
    )
    save_checkpoint(model, recipe, args.out)
    size_kb = math.ceil(args.out.stat().st_size / 1024)
    print(json.dumps(recipe, sort_keys=True))
    print(f"wrote {args.out} ({size_kb} KiB): test accuracy {recipe['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()

"""``onfh train``: train a femoral head network on synthetic phantoms for a time budget."""

from __future__ import annotations

import argparse
from pathlib import Path

from grading.engine.networks import MODEL_NAMES


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a segmentation network on synthetic phantoms",
        description="Train a femoral head network on synthetic phantom crops for a "
        "wall-clock budget; writes OUT/checkpoint.pt (resumable) and "
        "OUT/<model>.pt + .json (weights and metadata).",
    )
    p.add_argument("--model", choices=MODEL_NAMES, default="ours")
    p.add_argument(
        "--minutes",
        type=float,
        default=15.0,
        help="training wall-clock budget (data preparation not counted)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="also stop after this many steps (schedule follows the steps)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    p.add_argument("--out", type=Path, default=Path("out/train"))
    p.add_argument("--resume", type=Path, default=None, help="checkpoint.pt to continue")
    p.add_argument("--n-train", type=int, default=2048, help="training crops (rendered once)")
    p.add_argument("--n-val", type=int, default=128, help="held-out validation crops")
    p.add_argument("--seed", type=int, default=1, help="training data seed")
    p.add_argument("--val-seed", type=int, default=900_001)
    p.add_argument("--input-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=None, help="default: all cores")
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: on a CPU with AMX, or CUDA never)",
    )
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--out-channels",
        type=int,
        choices=(1, 3),
        default=3,
        help="3: background, viable head, necrosis (the learned necrosis output); 1: head only",
    )
    p.add_argument(
        "--synth-share",
        type=float,
        default=0.5,
        help="share of each batch synthesised from tissue maps (domain randomisation)",
    )
    p.add_argument(
        "--extreme-lesion-share",
        type=float,
        default=0.2,
        help="share of head windows with a tiny or a near-total lesion",
    )
    p.add_argument(
        "--midline-share",
        type=float,
        default=0.0,
        help="share of axial windows moved onto the midline pelvic cavity",
    )
    p.add_argument(
        "--n-volume",
        type=int,
        default=0,
        help="coronal and sagittal T1 windows of the 3-D phantom added to the training crops",
    )
    p.add_argument(
        "--init-weights",
        type=Path,
        default=None,
        help="exported weights (.pt with its .json) to start from instead of a random start",
    )
    p.add_argument(
        "--install",
        action="store_true",
        help="also copy the weights to grading/engine/weights/onfh_net.pt",
    )
    p.add_argument("--no-progress", action="store_true", help="log lines instead of a bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil

    from grading.engine.predictor import DEFAULT_WEIGHTS, metadata_path
    from grading.engine.training import TrainConfig, train

    cfg = TrainConfig(
        model=args.model,
        minutes=args.minutes,
        max_steps=args.steps,
        device=args.device,
        input_size=args.input_size,
        n_train=args.n_train,
        n_val=args.n_val,
        train_seed=args.seed,
        val_seed=args.val_seed,
        batch_size=args.batch_size,
        lr=args.lr,
        bf16=args.bf16,
        channels_last=args.channels_last,
        threads=args.threads,
        out_channels=args.out_channels,
        synth_share=args.synth_share,
        extreme_lesion_share=args.extreme_lesion_share,
        midline_share=args.midline_share,
        n_volume=args.n_volume,
        init_weights=None if args.init_weights is None else str(args.init_weights),
    )
    result = train(cfg, out=args.out, resume=args.resume, progress=not args.no_progress)
    print(
        f"{result.config.model}: {result.steps} steps in {result.train_seconds / 60:.1f} min, "
        f"held-out head Dice {result.val_dice:.4f}"
        + (
            f", necrosis Dice {result.history[-1]['val_necrosis_dice']:.4f}"
            if result.history and "val_necrosis_dice" in result.history[-1]
            else ""
        )
    )
    if args.install:
        src = args.out / f"{result.config.model}.pt"
        shutil.copyfile(src, DEFAULT_WEIGHTS)
        shutil.copyfile(metadata_path(src), metadata_path(DEFAULT_WEIGHTS))
        print(f"installed {DEFAULT_WEIGHTS}")
    return 0

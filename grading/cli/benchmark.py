"""``onfh benchmark``: accuracy of ours vs U-Net vs LinkNet (+ ablations), or ``--speed``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from grading.engine.families import FAMILY_NAMES
    from grading.engine.networks import MODEL_NAMES

    p = subparsers.add_parser(
        "benchmark",
        help="compare ours, U-Net and LinkNet on synthetic phantoms",
        description="Train every model on the same synthetic crops with the same time "
        "budget, once per phantom family (own, independent: leave-one-family-out), and "
        "report head metrics (paper's Table 1, Dice, IoU), the network's necrosis Dice "
        "and the engine pipeline's necrosis and grade metrics on the held-out phantoms "
        "of every family side by side (in-family and shift); "
        "or, with --speed, ms per 256x256 hip.",
    )
    p.add_argument("--speed", action="store_true", help="inference speed only")
    p.add_argument(
        "--classifications",
        type=int,
        default=0,
        metavar="N",
        help="JIC type accuracy, confusion matrix and Kerboul angle error on N held-out "
        "volume phantoms (true masks on the series grid), then from the engine's own masks "
        "(shipped weights, or the first --weights) on N other held-out phantoms: JIC, "
        "Kerboul, roof edge error, coronal per-slice and volumetric grade accuracy, "
        "axial-coronal agreement",
    )
    p.add_argument(
        "--classification-seed",
        type=int,
        default=31000,
        metavar="SEED",
        help="--classifications: first volume phantom seed of the engine part (default "
        "31000, the held-out block; choose another block to develop on)",
    )
    p.add_argument(
        "--classification-split",
        action="store_true",
        help="--classifications: also measure the coronal series with the true head, the "
        "true necrosis or both in place of the engine's, and list every hip",
    )
    p.add_argument(
        "--no-grade-speed",
        action="store_true",
        help="--speed: leave out the 20-slice series through onfh grade",
    )
    p.add_argument(
        "--threshold",
        action="store_true",
        help="the necrosis step alone, with true head masks (crops and series), "
        "plus series with the network (shipped, or the first --weights)",
    )
    p.add_argument("--crops", type=int, default=60, help="--threshold: crops per kind")
    p.add_argument("--crop-seed", type=int, default=20000, help="--threshold: first crop seed")
    p.add_argument(
        "--series-seed",
        type=int,
        default=None,
        help="first held-out series seed (default 800001; with --threshold 14000)",
    )
    p.add_argument(
        "--truth-series",
        type=int,
        default=32,
        help="--threshold: series graded with true head masks",
    )
    p.add_argument(
        "--network-series",
        type=int,
        default=16,
        help="--threshold: series graded with the network (0: none)",
    )
    p.add_argument(
        "--family",
        choices=("own", "b"),
        default="own",
        help="--threshold: the project's phantoms (own) or the independent family B "
        "(grading.engine.phantoms_b: --series-seed, --truth-series series and --crops crops "
        "of its evaluation set, each with the network; never tuned on)",
    )
    p.add_argument(
        "--skip-stage",
        action="append",
        default=[],
        metavar="NAME",
        help="--threshold: leave out this series stage (e.g. coherent_lesions; repeatable), "
        "for before/after figures",
    )
    p.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=None)
    p.add_argument(
        "--shipped-only", action="store_true", help="measure only the shipped weights (no training)"
    )
    p.add_argument(
        "--weights",
        nargs="+",
        type=Path,
        default=[],
        metavar="PT",
        help="also measure these exported weights (each beside its .json) "
        "as they are; with --shipped-only, no model is trained",
    )
    p.add_argument(
        "--no-shipped", action="store_true", help="do not add a row for the shipped weights"
    )
    p.add_argument("--minutes-per-model", type=float, default=3.0)
    p.add_argument(
        "--steps-per-model",
        type=int,
        default=None,
        help="equal steps: each model also stops after this many",
    )
    p.add_argument(
        "--init-seeds",
        type=int,
        nargs="+",
        default=(),
        metavar="SEED",
        help="train each model once per seed (start and batch order; same training crops)",
    )
    p.add_argument(
        "--families",
        nargs="+",
        choices=FAMILY_NAMES,
        default=list(FAMILY_NAMES),
        help="phantom families measured side by side",
    )
    p.add_argument(
        "--train-families",
        nargs="+",
        choices=FAMILY_NAMES,
        default=list(FAMILY_NAMES),
        help="each model is trained once on each of these (leave-one-family-out)",
    )
    p.add_argument(
        "--out-channels",
        type=int,
        choices=(1, 3),
        default=3,
        help="3: networks with the learned necrosis output (as shipped); 1: head only",
    )
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--n-test", type=int, default=192, help="held-out crops for head metrics")
    p.add_argument(
        "--n-series",
        type=int,
        default=8,
        help="held-out bilateral series for necrosis and grade metrics",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size")
    p.add_argument("--lr", type=float, default=3e-3, help="peak training learning rate")
    p.add_argument(
        "--precisions", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"]
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/benchmark"),
        help="writes OUT/<accuracy|speed>.json and .md",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.classifications:
        from grading.engine.classification_benchmark import (
            classification_benchmark,
            engine_classification_benchmark,
        )
        from grading.engine.predictor import HeadSegmenter

        print("true masks:")
        print(classification_benchmark(n_phantoms=args.classifications).as_text())
        segmenter = HeadSegmenter.load(
            args.weights[0] if args.weights else None, device=args.device
        )
        engine_report = engine_classification_benchmark(
            segmenter,
            n_phantoms=args.classifications,
            seed=args.classification_seed,
            split=args.classification_split,
        )
        print(engine_report.as_text())
        for mode, counts in engine_report.split.items():
            print(f"hips, {mode}:")
            print(counts.as_text(details=True))
        for mode, axial in engine_report.axial_split.items():
            print(f"axial hips, {mode}:")
            print(axial.as_text(details=True))
        return 0
    from grading.engine import benchmark

    if args.threshold:
        from grading.engine import threshold_benchmark

        weights = str(args.weights[0]) if args.weights else ""
        if args.family == "b":
            from grading.engine import family_b_benchmark

            report = family_b_benchmark.run_family_b(
                seed=7000 if args.series_seed is None else args.series_seed,
                n_series=args.truth_series,
                n_crops=args.crops,
                weights=weights,
                workers=os.cpu_count() or 1,
                skip_stages=args.skip_stage,
            )
            markdown = family_b_benchmark.family_b_markdown(report)
            benchmark.write_report(report, args.out / "family_b", markdown)
            print(f"{report['date']}")
            print(markdown)
            return 0
        report = threshold_benchmark.run_threshold(
            n_crops=args.crops,
            crop_seed=args.crop_seed,
            series_seed=14000 if args.series_seed is None else args.series_seed,
            n_series=args.truth_series,
            n_network_series=args.network_series,
            weights=weights if args.network_series > 0 else None,
            workers=os.cpu_count() or 1,
            skip_stages=args.skip_stage,
        )
        markdown = threshold_benchmark.threshold_markdown(report)
        benchmark.write_report(report, args.out / "threshold", markdown)
        print(f"{report['date']}")
        print(markdown)
        return 0
    if args.speed:
        report = benchmark.run_speed(
            tuple(args.models or ("ours", "unet", "linknet")),
            device=args.device,
            precisions=tuple(args.precisions),
            out_channels=args.out_channels,
        )
        markdown = benchmark.speed_markdown(report)
        if not args.no_grade_speed:
            from grading.cli.grade_speed import grade_speed_markdown, run_grade_speed
            from grading.engine.predictor import HeadSegmenter

            segmenter = HeadSegmenter.load(
                args.weights[0] if args.weights else None, device=args.device
            )
            report["grade_series"] = run_grade_speed(segmenter)
            markdown += grade_speed_markdown(report["grade_series"])
        benchmark.write_report(report, args.out / "speed", markdown)
    else:
        cfg = benchmark.AccuracyConfig(
            minutes_per_model=args.minutes_per_model,
            steps_per_model=args.steps_per_model,
            n_train=args.n_train,
            n_test=args.n_test,
            n_series=args.n_series,
            device=args.device,
            batch_size=args.batch_size,
            lr=args.lr,
            init_seeds=tuple(args.init_seeds),
            families=tuple(args.families),
            train_families=tuple(args.train_families),
            out_channels=args.out_channels,
        )
        if args.series_seed is not None:
            cfg.series_seed = args.series_seed
        if args.models:
            cfg.models = tuple(args.models)
        if args.shipped_only:
            cfg.models = ()
        cfg.shipped = not args.no_shipped
        cfg.weights = tuple(args.weights)
        report = benchmark.run_accuracy(cfg, out=args.out / "models", progress=not args.no_progress)
        markdown = benchmark.accuracy_markdown(report)
        benchmark.write_report(report, args.out / "accuracy", markdown)
    print(f"machine: {report['machine']}, torch {report['torch']}, {report['date']}")
    print(markdown)
    return 0

"""The seed's workflow as a script: learn to draw digits with one pen gesture, then cluster the commands.

    python examples/draw_digits.py                      # bundled digits, ~1-3 min on 2 CPU cores
    python examples/draw_digits.py --idec 0.1           # then IDEC fine-tuning, as the draw study
    python examples/draw_digits.py --mnist ~/data/mnist # MNIST IDX files in that folder
    python examples/draw_digits.py --emnist ~/data/emnist --subset balanced

Writes figures to ``--out`` (default ``draw-example/``) and prints the k-means
accuracies of the learned commands and of the raw pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch

from difflens.data import emnist, load_digits, mnist
from difflens.draw.experiment import DrawConfig, run_experiment
from difflens.plot import draw as dplot
from difflens.plot.animation import save_animation


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mnist", help="folder with MNIST IDX files")
    p.add_argument("--emnist", help="folder with EMNIST IDX files")
    p.add_argument("--subset", default="balanced", help="EMNIST subset (default balanced)")
    p.add_argument("--variant", default="gesture", choices=["gesture", "static"])
    p.add_argument("--epochs", type=int, default=None, help="default: 150 gesture / 60 static (bundled digits), 10 (MNIST)")
    p.add_argument("--idec", type=float, default=0.0, metavar="WEIGHT",
                   help="after training, fine-tune the commands with IDEC at this weight (the study uses 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="draw-example")
    args = p.parse_args()

    if args.mnist:
        train, test = mnist(args.mnist, "train"), mnist(args.mnist, "test")
    elif args.emnist:
        train, test = emnist(args.emnist, args.subset, "train"), emnist(args.emnist, args.subset, "test")
    else:
        train, test = load_digits(split="train"), load_digits(split="test")
    bundled = len(train[0]) < 5000
    if args.variant == "gesture":
        config = DrawConfig(variant="gesture", epochs=args.epochs or (150 if bundled else 10),
                            cluster_weight=args.idec, cluster_epochs=40 if bundled else 3)
    else:  # the seed's first model: 10 markers joined by max
        config = DrawConfig(variant="static", n_markers=10, min_size=0.75, max_size=3.5, join="max",
                            epochs=args.epochs or (60 if bundled else 5))

    result = run_experiment(train, test, config, torch.Generator().manual_seed(args.seed), progress=True,
                            log=print)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x = test[0][:20]
    with torch.no_grad():
        dplot.reconstruction_grid(x, result.model(x)).savefig(out / "reconstructions.png", dpi=100)
        cmd = result.model.commands(x)
    dplot.gesture_tracks(cmd.positions, cmd.sizes, cmd.intensities, x, ncols=10).savefig(out / "tracks.png", dpi=100)
    hist = result.trainer.optimization.history
    anim = dplot.training_animation(hist.snapshots, [i / result.trainer.steps_per_epoch
                                                     for i in hist.snapshot_iterations], test[0][:16])
    save_animation(anim, out / "training", fmt="gif")
    m = result.metrics
    print(f"test MSE {m['test_mse']:.4f} (PSNR {m['test_psnr']:.1f} dB), trained in {m['train_seconds']:.0f} s")
    print(f"k-means accuracy, majority label: commands {m['kmeans_accuracy_codes']:.3f}, "
          f"pixels {m['kmeans_accuracy_pixels']:.3f}")
    print(f"k-means accuracy, one-to-one:     commands {m['hungarian_accuracy_codes']:.3f}, "
          f"pixels {m['hungarian_accuracy_pixels']:.3f}")
    if "kmeans_accuracy_codes_autoencoder" in m:
        print(f"before IDEC, majority label:      commands {m['kmeans_accuracy_codes_autoencoder']:.3f} "
              f"(test MSE {m['test_mse_autoencoder']:.4f})")
    print(f"linear probe:                     commands {m['probe_accuracy_codes']:.3f}, "
          f"pixels {m['probe_accuracy_pixels']:.3f}")
    print(f"figures in {out}/")


if __name__ == "__main__":
    main()

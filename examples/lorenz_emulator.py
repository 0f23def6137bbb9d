"""The seed's workflow as a script: integrate Lorenz-63, train the fcRNN on 15-state windows, let it run.

1. Ground truth: random initial conditions spun up onto the attractor, dopri5
   at rtol = atol = 1e-10 in float64, sampled every dt = 0.01.
2. The seed's fcRNN (ReLU ``nn.RNN`` + a linear head on the last hidden state),
   wrapped to read normalised states and predict the increment to the next one;
   trained on the shared engine with a checkpoint (rerun the script to resume).
3. From held-out contexts of 15 true states the network continues on its own
   predictions; valid prediction time in Lyapunov times against the ground truth.
4. The seed's animation (the prediction at each training snapshot) as a GIF.

    python examples/lorenz_emulator.py --iterations 2000 --out lorenz_example
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch

from difflens.dynamics import (
    TrainConfig,
    make_dataset,
    make_emulator,
    train_emulator,
    valid_prediction_time,
)
from difflens.plot import dynamics as P
from difflens.plot import save_animation


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="lorenz_example")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # small tensors: one thread is as fast and does not fight other processes

    # 1. ground truth
    data = make_dataset(torch.Generator().manual_seed(args.seed), n_train=32, n_val=8, n_test=100,
                        train_samples=2000, test_samples=15 + 1200, dt=0.01)
    print(f"data: train {tuple(data.train.shape)}, test {tuple(data.test.shape)}, attractor std {data.std.tolist()}")

    # 2. the seed's network, trained on the engine (checkpointed: rerunning resumes)
    em = make_emulator("rnn", args.hidden, 1, 15, data, inputs="state", target="increment",
                       generator=torch.Generator().manual_seed(args.seed + 1))
    cfg = TrainConfig(iterations=args.iterations, batch_size=128)
    ckpt = out / "training.pt"
    opt = train_emulator(em, data.train, cfg, torch.Generator().manual_seed(args.seed + 2), val=data.val,
                         val_every=100, snapshot_every=max(1, args.iterations // 10), progress="training",
                         checkpoint_path=ckpt, checkpoint_every=500, resume=True)
    print(f"validation one-step loss {opt.history['val_loss'][-1]:.3g} (MSE / increment variance)")

    # 3. forecasts from held-out contexts
    with torch.no_grad():
        pred = em.rollout(data.test[:, :15].float(), data.test.shape[1] - 15, max_abs=None).double()
    vpt = valid_prediction_time(pred, data.test[:, 15:], data.std, data.dt)
    print(f"valid prediction time over {vpt.numel()} held-out initial conditions: median {vpt.median():.2f}, "
          f"mean {vpt.mean():.2f} Lyapunov times")
    fig = P.trajectory_3d(data.test[0, :15 + 600], pred[0, :600], context=15)
    fig.savefig(out / "trajectory.png", dpi=100)

    # 4. the seed's animation: the forecast at each training snapshot
    preds = []
    for sd in opt.history.snapshots:
        em.load_state_dict(sd)
        with torch.no_grad():
            preds.append(em.rollout(data.test[:1, :15].float(), 300, max_abs=None)[0].double())
    anim = P.animate_training_prediction(data.test[0, :315], preds, opt.history.snapshot_iterations, 15)
    print(f"wrote {save_animation(anim, out / 'training', fps=3, fmt='gif')} and {out / 'trajectory.png'}")


if __name__ == "__main__":
    main()

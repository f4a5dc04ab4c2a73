"""What evaluation costs against training, per equivalent epoch (docs/method.md, "Measuring").

One equivalent epoch of Algorithm 1 on real Fashion-MNIST (all 60,000 training images, small CNN,
batch 128), then the evaluation that follows it, timed three ways and interleaved over repeats:
the train loss on every training image plus the test set (the old default), and on a fixed
sample of `--train-eval-subset` images plus the test set (what the results/ study records).
Target: evaluation at most a third of the training time.

    python benchmarks/eval_cost.py --image-size 28 --repeats 3
"""
import argparse
import statistics
import time

import torch

import hardbatch as hb
from hardbatch.train import evaluate, start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-eval-subset", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    data = hb.load_dataset("fashion-mnist")
    cfg = hb.RunConfig(method="minibatch", dataset="fashion-mnist", batch_size=args.batch_size,
                       image_size=args.image_size, threads=args.threads, device="cpu")
    run = start(cfg, data)
    sample = data.fixed_sample(len(data.y_train), args.train_eval_subset)
    times = {"train": [], "eval all": [], "eval sample": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run.refill_queue()
        while run.queue:
            run.backprop(run.queue.pop(0))
        times["train"].append(time.perf_counter() - t0)
        for name, idx in (("eval all", torch.arange(len(data.y_train))), ("eval sample", sample)):
            t0 = time.perf_counter()
            evaluate(run.model, run.data.x_train[idx], run.data.y_train[idx], run.data, cfg)
            evaluate(run.model, run.data.x_test, run.data.y_test, run.data, cfg)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"Fashion-MNIST, small_cnn, B={args.batch_size}, {args.image_size}², {torch.get_num_threads()} thread(s), "
          f"median of {args.repeats}:")
    print(f"  one equivalent epoch of training: {med['train']:.1f} s")
    for name in ("eval all", "eval sample"):
        what = "train loss on all 60,000" if name == "eval all" else f"train loss on {args.train_eval_subset:,}"
        print(f"  evaluation, {what} + test 10,000: {med[name]:.1f} s = {med[name] / med['train']:.2f} of training")


if __name__ == "__main__":
    main()

"""What several test files share: the command line called in-process, the tiny run and sweep they start
from, and a run stopped early with its checkpoint left behind."""
import pytest

import hardbatch as hb
from hardbatch import cli
from hardbatch.sweep import plan

TINY = dict(epochs=2, batch_size=32, subset=128, device="cpu")
RUN = ["run", "--epochs", "2", "--batch-size", "32", "--subset", "128", "--device", "cpu"]
SWEEP = ["sweep", "--models", "small_cnn", "--datasets", "digits", "--deltas", "0.5", "--seeds", "0", "--controls",
         "--epochs", "1", "--batch-size", "32", "--subset", "64", "--image-size", "0", "--device", "cpu",
         "--no-report"]
SWEEP_BASE = hb.RunConfig(epochs=1, batch_size=32, subset=64, lr=0.005, momentum=0.9, weight_decay=0.0)
RUNS = plan(["small_cnn"], ["digits"], [0.5], [0], controls=(), base=SWEEP_BASE)  # Algorithm 1 and hardest δ=0.5


def run_main(argv, capsys):
    """cli.main in-process: (exit status, stdout, stderr). Any other exception fails the test as it is."""
    try:
        status = cli.main(argv)
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class Stop(Exception):
    pass


def stop_at_epoch_1(cfg, digits, ck):
    """Train `cfg` with checkpoint `ck` and stop it at the first step of its second epoch."""
    n = -(-cfg.subset // cfg.batch_size)

    def stop(step, batch, loss):
        if step == n + 1:
            raise Stop

    with pytest.raises(Stop):
        hb.train(cfg, data=digits, checkpoint=ck, on_step=stop)

"""The main job: Algorithm 1 against Algorithm 2 (hardest, and the random control) over seeds.

`compare()` runs every arm at every seed in one process, after an untimed warm-up run and in a
seeded random order within each seed (so their times per back-prop compare fairly), writes each run record, a Markdown table of paired comparisons (report.py) with its
verdict in words, and a figure of test top-1 and train loss against equivalent epochs and of
test top-1 against training seconds.
"""
import io
from pathlib import Path

from tqdm.auto import tqdm

from . import arms
from .config import RunConfig
from .data import load_dataset
from .files import atomic_write
from .plots import curves
from .record import save_record
from .report import summarize, to_markdown, verdict
from .runner import warm_up
from .sweep import seeded_order
from .train import train


def compare(base=None, deltas=(0.8, 0.5, 0.2), strategies=("hardest", "random"), seeds=(0, 1, 2),
            out_dir="runs/compare", progress=True, betas=(), specs=None, configs=None):
    """Run the comparison; return (records, rows, markdown table, figure path). betas: Selective-Backprop
    runs at these β too (chapter 6). specs: arm specs (arms.parse_arm, e.g. "infobatch prune=0.5") beside
    Algorithm 1 instead of deltas, strategies and betas. configs: the plan itself (arms.job's list), when the
    caller has made it already (the command line does, to check its output files first)."""
    base = base or RunConfig()
    configs = list(configs) if configs is not None else arms.job(base, deltas, strategies, seeds, betas, specs)
    seeds = list(dict.fromkeys(c.seed for c in configs))
    configs = seeded_order(configs)  # each seed's arms in a seeded random order, as a sweep runs them
    data = load_dataset(base.dataset)
    warm_up(base, data)  # untimed: thread pools, allocator and first-call costs are paid here
    out_dir = Path(out_dir)
    records = []
    for cfg in tqdm(configs, desc="compare", unit="run", disable=not progress):
        record = train(cfg, data=data)
        save_record(record, out_dir / "records" / f"{arms.record_name(cfg)}.json")
        records.append(record)
    rows = summarize(records)
    table = to_markdown(rows) + "\n\nVerdict:\n" + "\n".join(verdict(rows))
    atomic_write(out_dir / "table.md", table + "\n")
    fig = curves(records, keys=("test_acc", "train_loss", "test_acc@train_s"),
                 title=f"{base.model} on {base.dataset}: Algorithm 1 vs Algorithm 2, {len(seeds)} seeds")
    fig_path = out_dir / "compare.png"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write(fig_path, buf.getvalue())
    return records, rows, table, fig_path

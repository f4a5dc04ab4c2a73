"""The paper's tables and figures, rebuilt from a folder of run records (chapter 5, results/).

- Table 1: time per back-prop Δt of every arm, and its ratio to Algorithm 1's (paired by seed,
  since a sweep runs the arms of one seed one after the other in one process).
- Tables 3–5: one per data set: every arm of every block with paired differences, convergence,
  e, Δe in both conventions and the wall-clock view (`report.summarize`, `report.to_markdown`).
- Table 6: per model and data set, the best δ of `hardest` against Algorithm 1 (test top-1), as
  paired points and as relative % (the paper's unit), with the random control at that δ beside it.
- Figures 1 and 3–5: train loss and test top-1 against equivalent epochs, and test top-1 against
  training seconds (`plots.curves`), one figure per block.
- The verdict: every comparison in words (`report.verdict`).

Every table is written as Markdown and CSV, every figure as PNG, each atomically. A diverged run
(status != "complete") is never averaged in: tables count it. A file that is not a readable run
record is listed and skipped; the same run found twice is counted once.
"""
import csv
import hashlib
import io
import re
from pathlib import Path

from . import arms
from .files import atomic_write
from .metrics import mean_ci
from .records import read_records, shown  # noqa: F401 (hardbatch.paper.read_records: chapter 5)
from .report import _pm, blocks, by_block, group, recipe, setting_label, summarize, to_markdown, verdict_markdown

PAPER_TABLES = {"cifar10": "Table 3", "cifar100": "Table 4", "stl10": "Table 5"}
PAPER_FIGURES = {("cifar10", "resnet18"): "Figures 1 and 3", ("stl10", "efficientnet_b4"): "Figure 4",
                 ("cifar100", "resnet18"): "Figure 5"}


# ---------------------------------------------------------------- tables

def table1(records):
    """Rows of Table 1: Δt (ms per back-prop), images per second and the ratio to Algorithm 1 (paired by seed)."""
    rows = []
    for recs in blocks(records).values():
        by_arm = group(recs)  # complete runs only
        base_t = {r["config"]["seed"]: r["time_per_backprop_s"]
                  for r in by_arm.get(arms.baseline_arm(recs[0]["config"]), [])}
        for arm in sorted(by_arm, key=lambda a: arms.sort_key(dict(a))):
            runs = by_arm[arm]
            c = runs[0]["config"]
            ratios = [r["time_per_backprop_s"] / base_t[r["config"]["seed"]] for r in runs
                      if base_t.get(r["config"]["seed"])]
            rows.append({"dataset": c["dataset"], "model": c["model"], "setting": setting_label(c),
                         "arm": arms.label(c), "runs": len(runs),
                         "dt_ms": mean_ci([1e3 * r["time_per_backprop_s"] for r in runs]),
                         "images_per_s": mean_ci([r["n_train"] / r["n_batches"] / max(r["time_per_backprop_s"], 1e-12)
                                                  for r in runs]),
                         "ratio": mean_ci(ratios) if ratios else None})
    return rows


def table6(rows):
    """Per block: the best δ of `hardest` (highest mean test top-1) against Algorithm 1, paired, in points
    and in relative % as the paper's Table 6 computes it (the change divided by the best δ's top-1: for
    ResNet-18 on CIFAR-100, (35.8 − 33.2)/35.8 = 7.26 %), with random at that δ."""
    out = []
    for key, rs in by_block(rows).items():
        base = next((r for r in rs if r["baseline"] and r["test_acc"]), None)
        hard = [r for r in rs if r["select"] == "hardest" and r["vs_baseline"]]
        if base is None or not hard:
            continue
        best = max(hard, key=lambda r: r["test_acc"][0])
        control = next((r for r in rs if r["select"] == "random" and r["delta"] == best["delta"] and r["test_acc"]),
                       None)
        out.append({"dataset": base["dataset"], "model": base["model"], "setting": base["setting"], "block": key,
                    "baseline": base["test_acc"],
                    "best_delta": best["delta"], "best": best["test_acc"], "change_pp": best["vs_baseline"],
                    "change_rel_pct": 100 * best["vs_baseline"][0] / best["test_acc"][0],
                    "random": control["test_acc"] if control else None, "vs_random": best["vs_random"],
                    "seeds": best["seeds"]})
    return out


# ---------------------------------------------------------------- Markdown and CSV

def table1_markdown(rows):
    lines = ["| data | model | setting | arm | runs | Δt (ms / back-prop) | images / s | Δt ÷ Algorithm 1's (paired) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{_pm(r['ratio'], 2)}×"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['setting']} | {r['arm']} | {r['runs']} "
                     f"| {_pm(r['dt_ms'], 2)} | {_pm(r['images_per_s'], 0)} | {ratio} |")
    return "\n".join(lines)


def table6_markdown(rows):
    """The paper's shape: models down, data sets across; the best δ's change in points and in relative %."""
    shared = {}  # what a table shares: the block without its data set and model (grouped by key, headed by words)
    for r in rows:
        shared.setdefault(tuple(kv for kv in r["block"] if kv[0] not in ("dataset", "model")), []).append(r)
    out = []
    for rs in sorted(shared.values(), key=lambda rs: rs[0]["setting"]):
        setting = rs[0]["setting"]
        datasets = sorted({r["dataset"] for r in rs})
        cell = {(r["model"], r["dataset"]): r for r in rs}
        lines = [f"*{setting}* — test top-1 of the best δ of `hardest` minus Algorithm 1's: points (paired, "
                 f"± 95 % interval; bold when it excludes 0) and relative % as the paper's Table 6 computes it "
                 f"(divided by the best δ's top-1)", "", "| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
        for model in sorted({r["model"] for r in rs}):
            cells = []
            for d in datasets:
                r = cell.get((model, d))
                cells.append("-" if r is None else
                             f"{_pm(r['change_pp'], 2, sign=True)} points = {r['change_rel_pct']:+.2f} % "
                             f"(δ={r['best_delta']:g}: {r['best'][0]:.1f} vs {r['baseline'][0]:.1f}, {r['seeds']} seeds"
                             + (f"; − random at δ={r['best_delta']:g}: {_pm(r['vs_random'], 2, sign=True)}"
                                if r["vs_random"] else "") + ")")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) if out else "(no block has both Algorithm 1 and a completed hardest arm)"


def _flat(row):
    """A table row for CSV: (mean, half-width[, n]) become columns; nan and None become empty; keys are dropped."""
    out = {}
    for k, v in row.items():
        if k in ("arm", "block") and isinstance(v, tuple):
            continue  # the arm's or block's key: its words are in "label" and "setting"
        if isinstance(v, tuple) and len(v) in (2, 3):
            out[k], out[f"{k}_ci95"] = (("" if x != x else x) for x in v[:2])
        else:
            out[k] = "" if v is None else v
    return out


def write_csv(rows, path):
    """Rows as a CSV file (written atomically), with a header even when there are no rows."""
    flat = [_flat(r) for r in rows]
    names = list(dict.fromkeys(k for f in flat for k in f)) or ["empty"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, restval="")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write(path, buf.getvalue())


def _slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


# ---------------------------------------------------------------- figures

def figures(records, out_dir):
    """One PNG per block: train loss and test top-1 against equivalent epochs, test top-1 against training s."""
    import matplotlib.pyplot as plt

    from .plots import curves

    written = []
    for key, recs in blocks(records).items():
        if not group(recs):
            continue  # every run diverged: nothing to draw
        c = recs[0]["config"]
        dataset, model, setting = c["dataset"], c["model"], setting_label(c)
        paper = PAPER_FIGURES.get((dataset, model))
        title = (f"{model} on {dataset} ({setting}), mean ± 95 % CI over seeds"
                 + (f" — the paper's {paper}" if paper else ""))
        fig = curves(recs, keys=("train_loss", "test_acc", "test_acc@train_s"), title=title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        digest = hashlib.sha1(repr(key).encode()).hexdigest()[:6]  # every other setting
        name = _slug(f"fig-{dataset}-{model}-{recipe(c)}-E{c['epochs']}-S{c['image_size']}-{digest}") + ".png"
        atomic_write(Path(out_dir) / name, buf.getvalue())
        written.append({"dataset": dataset, "model": model, "setting": setting, "path": Path(out_dir) / name,
                        "paper": paper})
    return written


# ---------------------------------------------------------------- the report

def write_report(folder, out=None, make_figures=True):
    """Read every record under `folder`; write report.md, table1.csv, tables3-5.csv, table6.csv and
    figures/*.png into `out` (default folder/report). Returns the tables, the Markdown and the paths."""
    folder = Path(folder)
    records, skipped = read_records(folder)
    if not records:
        unreadable = "; ".join(f"{shown(path.name)}: {why}" for path, why in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        raise ValueError(f"no run records found in {str(folder)!r}"
                         + (f" ({len(skipped)} unreadable .json files: {unreadable}{more})" if skipped else ""))
    out = Path(out) if out else folder / "report"
    t1, rows = table1(records), summarize(records)
    t6 = table6(rows)
    figs = figures(records, out / "figures") if make_figures else []
    n_div = sum(r["status"] != "complete" for r in records)
    seeds = sorted({r["config"]["seed"] for r in records})

    md = [f"# Results from {len(records)} run records", "",
          f"{len(records) - n_div} complete, {n_div} diverged (counted, never averaged in)"
          + (f"; {len(skipped)} file(s) skipped" if skipped else "") + f"; seeds {', '.join(map(str, seeds))}."]
    md += [f"- skipped `{shown(p.relative_to(folder) if p.is_relative_to(folder) else p)}`: {why}"
           for p, why in skipped]
    md += ["", "## Verdict", "", verdict_markdown(rows)]
    md += ["", "## Table 1 — time per back-prop", "",
           "Training steps only (evaluation excluded); images / s = samples per back-prop ÷ Δt; the ratio is "
           "paired by seed, since a sweep runs the arms of one seed one after the other in one process.", "",
           table1_markdown(t1), "", "## Tables 3–5 — accuracy, convergence and time", ""]
    for dataset in sorted({r["dataset"] for r in rows}):
        name = PAPER_TABLES.get(dataset, "The shape of Tables 3–5")
        md += [f"### {name} — {dataset}", "", to_markdown([r for r in rows if r["dataset"] == dataset]), ""]
    md += ["## Table 6 — best δ against Algorithm 1", "", table6_markdown(t6)]
    if figs:
        md += ["", "## Figures 1, 3–5 — curves", "",
               "Left: train loss in eval mode (the paper's Figure 1). Middle: test top-1 at equal back-props "
               "(its Figures 3–5). Right: test top-1 against training seconds (equal wall-clock). Bands: 95 % CI "
               "over seeds."]
        for f in figs:
            paper = f" — the paper's {f['paper']}" if f["paper"] else ""
            md += ["", f"**{f['model']} on {f['dataset']}** ({f['setting']}){paper}", "",
                   f"![{f['model']} on {f['dataset']}]({f['path'].relative_to(out).as_posix()})"]
    markdown = "\n".join(md) + "\n"

    atomic_write(out / "report.md", markdown)
    write_csv(t1, out / "table1.csv")
    write_csv(rows, out / "tables3-5.csv")
    write_csv(t6, out / "table6.csv")
    files = [out / n for n in ("report.md", "table1.csv", "tables3-5.csv", "table6.csv")] + [f["path"] for f in figs]
    return {"markdown": markdown, "table1": t1, "results": rows, "table6": t6, "figures": figs,
            "records": len(records), "diverged": n_div, "skipped": skipped, "out_dir": out, "files": files}

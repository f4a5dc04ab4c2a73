"""The paper's tables and figures, rebuilt from a folder of run records (chapter 5).

- Table 1: time per back-prop Δt of every arm, and its ratio to Algorithm 1's (paired by seed,
  since a sweep runs the arms of one seed one after the other in one process).
- Tables 3–5: one per data set, one row per model and arm: train and test top-1 (mean ± 95 % CI
  over seeds) at the end of the budget, e and Δe (`report.summarize`).
- Table 6: per model and data set, the best δ of Algorithm 2 against Algorithm 1 (test top-1), with
  the random control beside it (at that δ, else at the nearest δ the sweep ran it).
- Figures 1 and 3–5: train loss and test top-1 against equivalent epochs (`plots.curves`), one
  figure per data set, model and setting.

Every table is written as Markdown and CSV, every figure as PNG, each atomically. A diverged run
(status != "complete") is never averaged in: tables count it in their own column. A file that is
not a readable run record is listed and skipped; the same run found twice is counted once.
"""
import csv
import hashlib
import io
import re
from collections import defaultdict
from pathlib import Path

from . import arms
from .metrics import mean_ci
from .record import atomic_write, load_record
from .report import _pm, arm_label, arm_of, group, summarize

PAPER_TABLES = {"cifar10": "Table 3", "cifar100": "Table 4", "stl10": "Table 5"}
PAPER_FIGURES = {("cifar10", "resnet18"): "Figures 1 and 3", ("stl10", "efficientnet_b4"): "Figure 4",
                 ("cifar100", "resnet18"): "Figure 5"}


# ---------------------------------------------------------------- reading

def read_records(folder):
    """(records, skipped): every run record in `folder` (recursively) and [(path, why)] for the rest."""
    records, skipped, seen = [], [], {}
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            record = load_record(path)
        except ValueError as e:
            skipped.append((path, str(e).removeprefix(f"{path}: ")))
            continue
        key = arms.run_key(record["config"])
        if key in seen:
            skipped.append((path, f"the same run as {seen[key].name}, counted once"))
            continue
        seen[key] = path
        records.append(record)
    return records, skipped


def recipe(config):
    """'paper' (constant lr, no augmentation), 'tuned' (cosine + augmentation), or what it is."""
    sched, aug = config.get("lr_schedule", "constant"), bool(config.get("augment", False))
    names = {("constant", False): "paper", ("cosine", True): "tuned"}
    return names.get((sched, aug), f"{sched}{' + augment' if aug else ''}")


def _test_subset(record):
    return record["config"].get("test_subset", 0)


def setting_label(record):
    """What the runs of one block share, in words: 'paper, E=100, 128², B=512, lr=0.005'."""
    c = record["config"]
    size = f"{c['image_size']}²" if c.get("image_size") else "native size"
    subset = f", {c['subset']} samples" if c.get("subset") else ""
    tested = f", tested on {_test_subset(record)}" if _test_subset(record) else ""
    extra = "".join(f", {name} {c[key]:g}" for key, name, usual in (("momentum", "momentum", 0.9),
                    ("weight_decay", "weight decay", 0.0)) if c.get(key, usual) != usual)
    extra += ", drop last" if c.get("drop_last") else ""
    return f"{recipe(c)}, E={c['epochs']}, {size}, B={c['batch_size']}, lr={c['lr']:g}{extra}{subset}{tested}"


def groups(records):
    """{(dataset, model, setting): records}: the runs that one table block or one figure compares."""
    out = defaultdict(list)
    for r in records:
        c = r["config"]
        out[(c["dataset"], c["model"], arms.block(c))].append(r)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1], setting_label(kv[1][0]))))


def _arm_order(arm):
    return arms.sort_key(dict(arm))


# ---------------------------------------------------------------- tables

def table1(records):
    """Rows of Table 1: Δt (ms per back-prop), images per second and the ratio to Algorithm 1."""
    rows = []
    for (dataset, model, _), recs in groups(records).items():
        by_arm = group(recs)  # complete runs only
        base_t = {r["config"]["seed"]: r["time_per_backprop_s"] for r in by_arm.get(arms.baseline_arm(recs[0]["config"]), [])}
        for arm in sorted(by_arm, key=_arm_order):
            runs = by_arm[arm]
            ratios = [r["time_per_backprop_s"] / base_t[r["config"]["seed"]] for r in runs
                      if base_t.get(r["config"]["seed"])]
            dt = mean_ci([1e3 * r["time_per_backprop_s"] for r in runs])
            rows.append({"dataset": dataset, "model": model, "setting": setting_label(runs[0]),
                         "arm": arm_label(arm), "runs": len(runs), "dt_ms": dt,
                         "images_per_s": mean_ci([r["n_train"] / r["n_batches"] / max(r["time_per_backprop_s"], 1e-12)
                                                  for r in runs]),
                         "ratio": mean_ci(ratios) if ratios else None})
    return rows


def results(records):
    """Rows of Tables 3–5 (one per arm of every data set, model and setting), diverged runs counted apart."""
    rows = []
    for (dataset, model, _), recs in groups(records).items():
        label = setting_label(recs[0])
        block = {arm_of(r): None for r in recs}  # every arm, in first-seen order
        done = {row["arm"]: row for row in summarize(recs)}
        diverged = defaultdict(int)
        for r in recs:
            if r["status"] != "complete":
                diverged[arm_of(r)] += 1
        for arm in sorted(block, key=_arm_order):
            a = dict(arm)
            row = done.get(arm) or {**a, "label": arm_label(arm), "seeds": 0, "train_acc": None, "test_acc": None,
                                    "e": None, "delta_e": None}
            rows.append({"dataset": dataset, "model": model, "setting": label, "method": a["method"],
                         "select": a.get("select"), "delta": a.get("delta"), "arm": row["label"], "seeds": row["seeds"],
                         "diverged": diverged.get(arm, 0), "train_acc": row["train_acc"], "test_acc": row["test_acc"],
                         "e": row["e"], "delta_e": row["delta_e"]})
    return rows


def table6(rows):
    """Per data set, model and setting: the best δ of `hardest` against Algorithm 1 on test top-1."""
    blocks = defaultdict(list)
    for r in rows:
        blocks[(r["dataset"], r["model"], r["setting"])].append(r)
    out = []
    for (dataset, model, setting), rs in blocks.items():
        base = next((r for r in rs if r["method"] == "minibatch" and r["test_acc"]), None)
        hard = [r for r in rs if r["method"] == "hardbatch" and r["select"] == "hardest" and r["test_acc"]]
        if base is None or not hard:
            continue
        best = max(hard, key=lambda r: r["test_acc"][0])
        controls = [r for r in rs if r["select"] == "random" and r["test_acc"]]  # at best δ, else the nearest
        control = min(controls, key=lambda r: abs(r["delta"] - best["delta"]), default=None)
        out.append({"dataset": dataset, "model": model, "setting": setting, "baseline": base["test_acc"],
                    "best_delta": best["delta"], "best": best["test_acc"],
                    "change_pp": best["test_acc"][0] - base["test_acc"][0],
                    "random": control["test_acc"] if control else None,
                    "random_delta": control["delta"] if control else None, "seeds": best["seeds"]})
    return out


# ---------------------------------------------------------------- Markdown and CSV

def _arrow(x, digits=2):
    return f"{'▲' if x >= 0 else '▼'} {abs(x):.{digits}f}"


def _opt(mc, digits=1):
    return "-" if mc is None else _pm(mc, digits)


def table1_markdown(rows):
    lines = ["| data | model | setting | arm | runs | Δt (ms / back-prop) | images / s | Δt ÷ Algorithm 1's |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{_pm(r['ratio'], 2)}×"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['setting']} | {r['arm']} | {r['runs']} "
                     f"| {_pm(r['dt_ms'], 2)} | {_pm(r['images_per_s'], 0)} | {ratio} |")
    return "\n".join(lines)


def results_markdown(rows):
    lines = ["| model | setting | arm | seeds | diverged | train top-1 (%) | test top-1 (%) | e | Δe (%) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["e"] if r["e"] is not None else ("not reached" if r["seeds"] and r["method"] != "minibatch" else "-")
        de = "-" if r["delta_e"] is None else _arrow(r["delta_e"])
        lines.append(f"| {r['model']} | {r['setting']} | {r['arm']} | {r['seeds']} | {r['diverged']} "
                     f"| {_opt(r['train_acc'])} | {_opt(r['test_acc'])} | {e} | {de} |")
    return "\n".join(lines)


def table6_markdown(rows):
    """The paper's shape: models down, data sets across, the change in test top-1 of the best δ."""
    out = []
    for setting in sorted({r["setting"] for r in rows}):
        rs = [r for r in rows if r["setting"] == setting]
        datasets = sorted({r["dataset"] for r in rs})
        cell = {(r["model"], r["dataset"]): r for r in rs}
        lines = [f"*{setting}* — change in test top-1 (percentage points) of the best δ over Algorithm 1",
                 "", "| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
        for model in sorted({r["model"] for r in rs}):
            cells = []
            for d in datasets:
                r = cell.get((model, d))
                cells.append("-" if r is None else f"{_arrow(r['change_pp'])} (δ={r['best_delta']:g}: "
                             f"{r['best'][0]:.1f} vs {r['baseline'][0]:.1f}"
                             + (f"; random δ={r['random_delta']:g}: {r['random'][0]:.1f}" if r["random"] else "") + ")")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) if out else "(no data set and model has both Algorithm 1 and a completed hardest arm)"


def _flat(row):
    """A table row for CSV: (mean, half-width) pairs become two columns; nan and None become empty."""
    out = {}
    for k, v in row.items():
        if isinstance(v, tuple) and len(v) == 2:
            out[k], out[f"{k}_ci95"] = (("" if x != x else x) for x in v)
        elif v is None and k in ("train_acc", "test_acc", "ratio", "random"):
            out[k], out[f"{k}_ci95"] = "", ""
        else:
            out[k] = "" if v is None else v
    return out


def write_csv(rows, path):
    """Rows as a CSV file (written atomically), with a header even when there are no rows."""
    flat = [_flat(r) for r in rows]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else ["empty"])
    writer.writeheader()
    writer.writerows(flat)
    atomic_write(path, buf.getvalue())


def _slug(text):
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


# ---------------------------------------------------------------- figures

def figures(records, out_dir):
    """One PNG per data set, model and setting: train loss and test top-1 against equivalent epochs."""
    import matplotlib.pyplot as plt

    from .plots import curves

    written = []
    for (dataset, model, setting), recs in groups(records).items():
        if not group(recs):
            continue  # every run diverged: nothing to draw
        c = recs[0]["config"]
        paper = PAPER_FIGURES.get((dataset, model))
        title = (f"{model} on {dataset} ({setting_label(recs[0])}), mean ± 95 % CI over seeds"
                 + (f" — the paper's {paper}" if paper else ""))
        fig = curves(recs, keys=("train_loss", "test_acc"), title=title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        digest = hashlib.sha1(repr(setting).encode()).hexdigest()[:6]  # every other setting
        name = _slug(f"fig-{dataset}-{model}-{recipe(c)}-E{c['epochs']}-S{c['image_size']}-{digest}") + ".png"
        atomic_write(Path(out_dir) / name, buf.getvalue())
        written.append({"dataset": dataset, "model": model, "setting": setting_label(recs[0]), "path": Path(out_dir) / name,
                        "paper": paper})
    return written


# ---------------------------------------------------------------- the report

def write_report(folder, out=None, make_figures=True):
    """Read every record under `folder`; write report.md, table1.csv, tables3-5.csv, table6.csv and
    figures/*.png into `out` (default folder/report). Returns the tables, the Markdown and the paths."""
    folder = Path(folder)
    records, skipped = read_records(folder)
    if not records:
        unreadable = f" ({len(skipped)} unreadable .json files)" if skipped else ""
        raise ValueError(f"no run records found in {str(folder)!r}{unreadable}")
    out = Path(out) if out else folder / "report"
    t1, rows = table1(records), results(records)
    t6 = table6(rows)
    figs = figures(records, out / "figures") if make_figures else []
    n_div = sum(r["status"] != "complete" for r in records)

    md = [f"# Results from {len(records)} run records in `{folder}`", "",
          f"{len(records) - n_div} complete, {n_div} diverged (counted in the *diverged* column, never averaged in)"
          + (f"; {len(skipped)} file(s) skipped" if skipped else "") + "."]
    md += [f"- skipped `{p.relative_to(folder) if p.is_relative_to(folder) else p}`: {why}" for p, why in skipped]
    md += ["", "## Table 1 — time per back-prop", "",
           "Training steps only (evaluation excluded); images / s = samples per back-prop ÷ Δt; the ratio is "
           "paired by seed, since a sweep runs the arms of one seed one after the other in one process.", "",
           table1_markdown(t1), "", "## Tables 3–5 — accuracy and convergence at equal back-props", "",
           "Top-1 after N·E back-props, mean ± 95 % CI over seeds; e: the baseline's convergence epoch of its "
           "train loss, and for the other arms the first equivalent epoch that reaches the baseline's level; "
           "Δe > 0 (▲) means faster than Algorithm 1."]
    for dataset in sorted({r["dataset"] for r in rows}):
        name = PAPER_TABLES.get(dataset, "The shape of Tables 3–5")
        md += ["", f"### {name} — {dataset}", "", results_markdown([r for r in rows if r["dataset"] == dataset])]
    md += ["", "## Table 6 — best δ against Algorithm 1", "", table6_markdown(t6)]
    if figs:
        md += ["", "## Figures 1, 3–5 — curves at equal back-props", "",
               "Left: train loss in eval mode over all N batches (the paper's Figure 1). "
               "Right: test top-1 (its Figures 3–5). Bands: 95 % CI over seeds."]
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

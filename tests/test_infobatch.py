"""InfoBatch's random-pruning control (`prune_by="random"`): each pass prunes exactly as many samples as the
loss rule would, given the same latest losses, drawn from all samples and rescaled by nothing. Checked by
watching every pass's refill: the count rule against the losses it read, for both rules; the loss rule prunes
only below-mean samples and the control rescales none; a seed gives the same record; a resume is exact."""
import pytest
import torch

import hardbatch as hb
from hardbatch.methods.infobatch import InfoBatch
from hardbatch.record import validate_record, without_timing
from test_no_sync import tiny_data


def cfg(prune_by, **kw):
    return hb.RunConfig(method="infobatch", prune_by=prune_by, **{"epochs": 5, "batch_size": 8, "prune": 0.5,
                                                                   "anneal": 0.25, "device": "cpu", **kw})


def watch(monkeypatch):
    """Every pass's refill: (latest losses it read (n,), samples it pruned, the loss weights it set (n,), kept (n,))."""
    passes = []
    original = InfoBatch.refill

    def refill(self, run):
        before, pruned = self.sample_loss.clone(), self.pruned
        out = original(self, run)
        kept = torch.zeros(len(before), dtype=torch.bool)
        kept[torch.cat(run.epoch_batches)] = True
        passes.append((before, self.pruned - pruned, self.weight.clone(), kept))
        return out

    monkeypatch.setattr(InfoBatch, "refill", refill)
    return passes


def count_rule(loss, r):
    """The number the loss rule prunes: the below-mean (scored) samples, less int((1 - r)·their count) kept."""
    scored = ~torch.isnan(loss)
    if not scored.any():
        return 0
    low = int((scored & (loss < loss[scored].mean())).sum())
    return low - int((1 - r) * low)


@pytest.mark.parametrize("prune_by", ["loss", "random"])
def test_each_pass_prunes_the_loss_rules_count(prune_by, monkeypatch):
    passes = watch(monkeypatch)
    c = cfg(prune_by)
    record = hb.train(c, data=tiny_data(83))  # N = 11
    assert len(passes) == c.epochs
    for e, (loss, pruned, weight, kept) in enumerate(passes):
        prunes = e <= c.epochs * (1 - c.anneal)  # the annealed last passes train on all data, unweighted
        assert pruned == (count_rule(loss, c.prune) if prunes else 0) == int((~kept).sum()), f"pass {e}"
        if prune_by == "random" or not prunes:
            assert bool((weight == 1).all()), "the control rescales nothing"
        else:
            scored = ~torch.isnan(loss)
            mean = loss[scored].mean() if scored.any() else float("inf")
            assert bool((loss[~kept] < mean).all()), "the loss rule prunes only below-mean samples"
            assert bool((weight[kept & (loss < mean)] == 2).all()) and bool((weight[~(loss < mean)] == 1).all())
    assert sum(p for _, p, _, _ in passes) == record["samples_pruned"] > 0
    validate_record(record)


def test_random_pruning_draws_from_all_samples_not_only_the_well_learned(monkeypatch):
    passes = watch(monkeypatch)
    hb.train(cfg("random", epochs=6), data=tiny_data(160))
    above = sum(int((~kept & ~(loss < loss[~torch.isnan(loss)].mean())).sum())
                for loss, _, _, kept in passes[1:] if not torch.isnan(loss).all())
    assert above > 0, "some pruned samples had an above-mean loss"


def test_the_control_is_its_own_arm_with_its_own_words():
    loss, random = cfg("loss"), cfg("random")
    assert hb.arms.arm(loss) != hb.arms.arm(random) and hb.arms.block(loss) == hb.arms.block(random)
    assert hb.arms.label(random) == "random pruning r=0.5 anneal=0.25" and hb.arms.label(loss).startswith("infobatch")
    assert hb.arms.record_name(random) != hb.arms.record_name(loss) and "-random-" in hb.arms.record_name(random)
    assert hb.arms.parse_arm("infobatch prune_by=random") == {"method": "infobatch", "prune_by": "random"}
    assert hb.RunConfig(method="infobatch").prune_by == "loss"
    with pytest.raises(ValueError, match="prune_by"):
        hb.RunConfig(method="infobatch", prune_by="hardest")
    with pytest.raises(ValueError, match="prune_by"):
        hb.RunConfig(method="online", prune_by="random")


def test_same_seed_same_record_other_seed_other_pruning():
    data = tiny_data(83)
    a, b = hb.train(cfg("random"), data=data), hb.train(cfg("random"), data=data)
    assert without_timing(a) == without_timing(b)
    other = hb.train(cfg("random", seed=1), data=data)
    assert other["batch_train_counts"] != a["batch_train_counts"] or other["history"] != a["history"]


class Stop(Exception):
    pass


def test_resume_after_a_stop_inside_a_pruned_pass_is_exact(tmp_path):
    data, c = tiny_data(83), cfg("random")
    whole = hb.train(c, data=data)
    stop = whole["history"][2]["backprops"] + 1  # inside the third pass, which prunes

    def on_step(step, batch, loss):
        if step == stop:
            raise Stop

    ck = tmp_path / "ck.pt"
    with pytest.raises(Stop):
        hb.train(c, data=data, checkpoint=ck, resume=True, on_step=on_step)
    assert without_timing(hb.train(c, data=data, checkpoint=ck, resume=True)) == without_timing(whole)

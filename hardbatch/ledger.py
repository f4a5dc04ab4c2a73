"""The loss ledger: what Algorithm 2 remembers about each mini-batch.

For every batch i of the fixed partition it keeps the latest loss (from the forward pass just
before that batch's update), how many times the batch was trained, and at which back-prop its
loss was last written. A loss that was written long ago is *stale*: the model has moved since.
The tensors live on the training device, so writing a loss never waits for the GPU.
Chapter 2 teaches this.
"""
import torch


class Ledger:
    def __init__(self, n_batches, device="cpu"):
        self.loss = torch.full((n_batches,), float("nan"), device=device)  # (N,) latest loss
        self.train_count = torch.zeros(n_batches, dtype=torch.long, device=device)  # (N,)
        self.last_scored = torch.full((n_batches,), -1, dtype=torch.long, device=device)  # (N,) back-prop index

    @classmethod
    def of(cls, losses):
        """A ledger holding just these (N,) losses, each written once at back-prop 0 (for teaching and tests)."""
        ledger = cls(len(losses), torch.as_tensor(losses).device)
        ledger.loss.copy_(torch.as_tensor(losses))
        ledger.train_count.fill_(1)
        ledger.last_scored.fill_(0)
        return ledger

    def __len__(self):
        return len(self.loss)

    def write(self, batch, loss, backprop):
        """Record that `batch` was trained at back-prop `backprop` with loss `loss` (a 0-d tensor)."""
        self.loss[batch] = loss.detach().float()
        self.train_count[batch] += 1
        self.last_scored[batch] = backprop

    def staleness(self, now):
        """(N,) how many back-props ago each batch's loss was written (-1 never written)."""
        return torch.where(self.last_scored >= 0, now - self.last_scored, torch.full_like(self.last_scored, -1))

    def starved(self):
        """(N,) bool: batches trained only in the warm-up pass (or never)."""
        return self.train_count <= 1

    def state_dict(self):
        return {"loss": self.loss.cpu(), "train_count": self.train_count.cpu(), "last_scored": self.last_scored.cpu()}

    def load_state_dict(self, state):
        for name in ("loss", "train_count", "last_scored"):
            getattr(self, name).copy_(state[name])

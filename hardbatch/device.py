"""How a model runs on the training device: bf16 autocast where it pays, channels_last, and a sync for clocks.

Shared by the training loop (train.py) and the methods that score samples forward-only (methods/).
"""
import torch


def autocast(cfg, device):
    """bf16 autocast on GPUs that compute in bf16 natively (Ampere and later; Colab's T4 does not)."""
    cuda = torch.device(device).type == "cuda"
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                          enabled=cfg.amp and cuda and torch.cuda.get_device_capability(device)[0] >= 8)


def layout(x):
    """channels_last (B, H, W, C in memory): faster convolutions and pooling on GPUs and on CPUs alike
    (1.5-2x per back-prop for the small CNN on digits, see benchmarks/step_time.py)."""
    return x.contiguous(memory_format=torch.channels_last)


def sync(device):
    """Wait for the GPU to finish its queue (clocks only; nothing on a CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()

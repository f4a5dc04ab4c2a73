"""Models: three small nets of our own, and any timm model by name.

- `small_cnn` (~10k weights): trains on digits in seconds on a CPU, the chapters' default.
- `two_conv_cnn` (~0.21M weights at 28², LeNet-like) and `mlp` (784-512-512-10 at 28²): cheap on a CPU and
  big enough to *fit* Fashion-MNIST (≈ 100 % train top-1), the regime of the paper's tables, where the
  loss of a batch can fall far below that of another. `small_cnn` underfits Fashion-MNIST (≈ 87 %).

timm models are made from scratch (`pretrained=False`, as in the paper) with the data set's
number of classes and input channels, so a 1-channel Fashion-MNIST image goes straight into a
ResNet-18.
"""
import difflib

import torch.nn as nn


class SmallCNN(nn.Module):
    """Two 3x3 convolutions, a pool, a linear layer: ~10k weights, any input size."""

    def __init__(self, in_chans=1, num_classes=10, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Linear(2 * width * 16, num_classes)

    def forward(self, x):  # (B, C, H, W) -> (B, num_classes)
        return self.head(self.features(x).flatten(1))


class TwoConvCNN(nn.Module):
    """conv16-pool-conv32-pool-fc128-fc10 (3x3 convolutions, ReLU): ~0.21M weights at 28²,
    almost all in fc128.

    The fully connected layer sees the whole 32-channel map at a quarter of the input side, so the weight
    count grows with the image size (28² -> 7x7x32 = 1568 inputs to fc128)."""

    def __init__(self, in_chans=1, num_classes=10, image_size=28):
        super().__init__()
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * side * side, 128), nn.ReLU(),
                                  nn.Linear(128, num_classes))

    def forward(self, x):  # (B, C, S, S) -> (B, num_classes)
        return self.head(self.features(x))


class MLP(nn.Module):
    """Pixels -> 512 -> 512 -> classes, ReLU: the plainest net that fits Fashion-MNIST (~0.67M weights at 28²)."""

    def __init__(self, in_chans=1, num_classes=10, image_size=28, width=512):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_chans * image_size * image_size, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):  # (B, C, S, S) -> (B, num_classes)
        return self.net(x)


OURS = {"small_cnn": SmallCNN, "two_conv_cnn": TwoConvCNN, "mlp": MLP}  # name -> class; the rest is timm's
SIZED = ("two_conv_cnn", "mlp")  # nets whose weights depend on the image side (create_model's image_size)


def check_model_name(name):
    """Return `name` if it is one of ours (OURS) or a timm model name; else ValueError with close names."""
    if isinstance(name, str) and name in OURS:
        return name
    import timm

    if not isinstance(name, str) or not timm.is_model(name):
        close = difflib.get_close_matches(str(name), list(OURS) + timm.list_models(), n=5, cutoff=0.6)
        hint = f"; did you mean: {', '.join(close)}?" if close else "; see timm.list_models()"
        raise ValueError(f"unknown model {name!r}: not one of {', '.join(OURS)} nor a timm model name{hint}")
    return name


def create_model(name="small_cnn", num_classes=10, in_chans=1, image_size=28):
    """One of ours (OURS), or any timm model name (from scratch). `image_size` (the side the net is fed)
    matters only to the nets in SIZED."""
    if check_model_name(name) in OURS:
        extra = {"image_size": image_size} if name in SIZED else {}
        return OURS[name](in_chans, num_classes, **extra)
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def check_fits(model, name, data, image_size=0):
    """Fail before training, with a hint, if `model` cannot take the data set's images (e.g. a ViT fixed at
    224²) or cannot be trained on them: it must have weights that train, and give one tensor of floating-point
    scores per image and class that depends on its weights (not a tuple or a dict, not integers, not detached).
    One forward pass of two images in eval mode: it changes no weight, no running statistic and draws no
    random number."""
    import torch

    from .data import preprocess

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model {name!r} has no weights that train (no parameters with requires_grad): "
                         f"SGD would have nothing to change")
    x = preprocess(data.x_train[:2], data, image_size)  # (2, C, S, S)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():  # to see whether the scores depend on the weights
            out = model(x.to(params[0].device))
    except (RuntimeError, AssertionError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"model {name!r} cannot take the {data.name} images at {tuple(x.shape[1:])}: "
                         f"{first} Choose another image size (--image-size; timm names a model's own, e.g. _224) "
                         f"or another model.") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"model {name!r} returns {type(out).__name__}, not a tensor: its forward must return one "
                         f"tensor of scores (logits) of shape (batch, classes); take the logits out of the "
                         f"{type(out).__name__} in forward")
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        raise ValueError(f"model {name!r} gives outputs of shape {tuple(out.shape[1:])} per image, but {data.name} "
                         f"has {data.num_classes} classes: it needs one output per class")
    if not out.is_floating_point():
        raise ValueError(f"model {name!r} gives {out.dtype} outputs; cross-entropy needs floating-point scores "
                         f"(logits), e.g. not argmax class numbers")
    if not out.requires_grad:
        raise ValueError(f"model {name!r} gives outputs that do not depend on its weights (detached, or computed "
                         f"under no_grad): back-prop could not train it")


def preflight(cfg):
    """What train.start would refuse for `cfg` (a RunConfig), found from its data set's known shape
    (data.SHAPES) without loading the data: a model that cannot take the images or gives the wrong
    number of outputs, a batch or subset larger than the training set. compare and sweep call it for
    every model and data set before their first run, so a grid fails now, not at its hundredth run."""
    import torch

    from .data import SHAPES, ImageData

    chans, side, classes, n_train = SHAPES[cfg.dataset]
    if cfg.subset > n_train:
        raise ValueError(f"subset must be between 1 and the {n_train} training samples of {cfg.dataset}, "
                         f"got {cfg.subset}")
    if cfg.batch_size > (cfg.subset or n_train):
        raise ValueError(f"batch_size must be at most the {cfg.subset or n_train} training samples "
                         f"({cfg.dataset}), got {cfg.batch_size}")
    key = (cfg.model, chans, side, classes, cfg.image_size)
    if key not in _FITS:
        x = torch.zeros(2, chans, side, side, dtype=torch.uint8)
        y = torch.zeros(2, dtype=torch.long)
        probe = ImageData(cfg.dataset, x, y, x, y, classes, (0.5,) * chans, (0.25,) * chans)
        check_fits(create_model(cfg.model, classes, chans, cfg.image_size or side), cfg.model, probe, cfg.image_size)
        _FITS.add(key)


_FITS = set()  # (model, channels, side, classes, image size) already checked in this process

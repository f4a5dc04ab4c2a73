"""The methods, one file each, and the registry that names them.

A method is a class behind methods/base.py's hooks. `REGISTRY` maps a config's `method` to its class;
config.py derives from it the methods a RunConfig allows (`METHODS`), which knob belongs to which method
(`ONLY_FOR`) and each method's defaults (`METHOD_DEFAULTS`), so a new method is one file and one line
here (plus a RunConfig field for a knob of its own). `register` also works at run time (a notebook, a
test): the lists below are updated in place, so every module that imported them sees the new method.
"""
from .base import Method
from .hardbatch import Hardbatch
from .infobatch import InfoBatch
from .minibatch import Minibatch
from .online import Online
from .selective import Selective

REGISTRY = {}  # name -> class
METHODS = []  # the names, in registration order
ONLY_FOR = {}  # knob -> the one method that reads it
METHOD_DEFAULTS = {}  # name -> {knob: default}


def register(cls):
    """Add a Method subclass to the registry (a knob must be a RunConfig field no other method reads)."""
    if not (isinstance(cls, type) and issubclass(cls, Method) and isinstance(cls.name, str) and cls.name):
        raise ValueError(f"a method must be a Method subclass with a name, got {cls!r}")
    taken = {k: ONLY_FOR[k] for k in (*cls.knobs, *cls.rule_knobs) if ONLY_FOR.get(k, cls.name) != cls.name}
    if taken:
        raise ValueError(f"method {cls.name!r}: knobs {taken} belong to other methods")
    if cls.name not in REGISTRY:
        METHODS.append(cls.name)
    REGISTRY[cls.name] = cls
    ONLY_FOR.update({knob: cls.name for knob in (*cls.knobs, *cls.rule_knobs)})
    METHOD_DEFAULTS[cls.name] = dict(cls.knobs)
    return cls


def unregister(name):
    """Remove a method registered at run time (tests clean up with it)."""
    cls = REGISTRY.pop(name)
    METHODS.remove(name)
    for knob in (*cls.knobs, *cls.rule_knobs):
        ONLY_FOR.pop(knob, None)
    METHOD_DEFAULTS.pop(name)


for _cls in (Minibatch, Hardbatch, Selective, InfoBatch, Online):  # the order of --method's choices
    register(_cls)


def get(name):
    """The class of a method name (ValueError naming the allowed ones)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return REGISTRY[name]

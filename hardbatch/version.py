"""The package's version, in a module of its own: the one place it lives.

pyproject.toml reads it ([tool.setuptools.dynamic]), hardbatch/__init__.py re-exports it as hb.__version__,
and train.py (run records) and cli.py (`--version`) import it from here, never from the package above them.
"""
__version__ = "0.1.0"

"""lucidserve: an observability-first serving template for scikit-learn models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lucidserve")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

"""Development certificates and private-key handling (being split into modules)."""

from .issue import *  # noqa: F403
from .issue import __all__ as __all__

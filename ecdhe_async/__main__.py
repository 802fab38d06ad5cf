"""``python -m ecdhe_async``: the same as the ``ecdhe-async`` command."""

import sys

from .cli import main

sys.exit(main())

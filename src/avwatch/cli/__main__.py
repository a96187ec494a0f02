"""``python -m avwatch.cli``: the ``avwatch`` command."""

import sys

from avwatch.cli import main

sys.exit(main())

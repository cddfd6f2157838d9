"""`python -m studio.cli`: the same as the `perec` command."""

import sys

from studio.cli import main

sys.exit(main())

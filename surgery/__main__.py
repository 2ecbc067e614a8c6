"""`python -m surgery`: the same as the `savedmodel-surgery` command."""

import sys

from surgery.cli import main

sys.exit(main())

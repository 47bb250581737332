"""`python -m mindfed ...`: the `mindfed` command."""

import sys

from mindfed.cli.main import main

sys.exit(main())

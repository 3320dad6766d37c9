"""`python -m bench`: the bench runner (bench/run.py)."""

import sys

from bench.run import main

sys.exit(main())

"""`python -m graphk COMMAND`: the same entry point as the `graphk` console script."""
import sys

from .cli import main

sys.exit(main())

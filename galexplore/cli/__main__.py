"""`python -m galexplore.cli`: the same as the `galexplore` command."""

import sys

from galexplore.cli import main

if __name__ == "__main__":
    sys.exit(main())

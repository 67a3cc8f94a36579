#!/usr/bin/env python3
"""The command line: ``python main.py --help``."""

import sys

from tracker.cli import main

if __name__ == "__main__":
    sys.exit(main())

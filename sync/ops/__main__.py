"""`python -m sync.ops`: see sync/ops/cli.py."""

import sys

try:
    from sync.ops.cli import main
except ModuleNotFoundError as missing:  # rich is a tool dependency, not the app's
    if missing.name != "rich":
        raise
    sys.exit("the ops command line needs the 'rich' package: pip install rich")

sys.exit(main())

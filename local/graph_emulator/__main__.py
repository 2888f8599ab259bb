"""Entry point: `python -m local.graph_emulator serve --port 8081`."""

from local.graph_emulator.cli import main

raise SystemExit(main())

"""`python -m app` opens the wizard; with a subcommand it runs headless."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())

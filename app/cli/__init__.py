"""The command-line face: the argument table, one function per subcommand, the terminal view.

Services below take typed arguments and return results or raise; only this
package (and the wizard) turns them into what a person reads.
"""

from app.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

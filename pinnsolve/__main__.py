"""``python -m pinnsolve`` is the CLI (torchrun launches modules this way)."""

from .cli import main

main()

"""``python -m conveyor``: the same as the ``conveyor`` command."""

from .cli.main import main

main()

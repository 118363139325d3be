"""`python -m dumpload` runs the same CLI as the `dumpload` command."""

from dumpload.cli import main

main()

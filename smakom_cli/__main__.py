"""Lets `python -m smakom_cli` run the command line."""

from smakom_cli.cli import main

main()

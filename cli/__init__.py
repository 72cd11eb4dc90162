"""The `elicence` command line: a thin layer over the library packages.

Each module parses one area's options, calls the library and turns its typed errors into
one-line messages and exit codes through cli.support. Nothing outside this package
imports it.
"""

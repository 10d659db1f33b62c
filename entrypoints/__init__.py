"""The ways in: the command line (`entrypoints.cli`) and the ASGI app (`entrypoints.asgi`), both
wired by `entrypoints.bootstrap`. Nothing below this package imports it."""

"""`python -m entrypoints.cli`: the same as the `donor-match` console script."""

from entrypoints.cli import app

app()

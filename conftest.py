"""pytest at the checkout's root."""

# The default run collects every module's doctests (--doctest-modules). galexplore/api/'s examples
# query an atlas, which tests/test_api.py builds (a tiny one, once) and runs them on.
collect_ignore = ["galexplore/api", "galexplore/explorer/app"]  # the served app: `panel serve` runs it

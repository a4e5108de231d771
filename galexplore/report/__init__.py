"""`galexplore report`: the self-contained HTML report (`page`), its summaries and galaxy montages."""

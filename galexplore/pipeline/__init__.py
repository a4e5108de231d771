"""`galexplore build`: a config to an atlas (`build`), its stages declared in `stages` and run by `runner`."""

"""`galexplore build`: the stages from a config to an atlas (`build`) and what each reads (`inputs`)."""

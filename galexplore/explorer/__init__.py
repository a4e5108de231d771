"""The explorer: the Panel page over an atlas (`page`), one session's state (`state`) and its views
(`mapview`, `gallery`, `selection`, `controls`), the shared data store, URL state, Host check,
queries and cutouts, and the app folder `panel serve` runs (`app/`, `server`). Needs the
``[app]`` extra; the rest of galexplore imports without Panel."""

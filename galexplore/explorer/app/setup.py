"""`panel serve app/ --setup app/setup.py`: refuse hosts not allowed, then load the atlas and warm
the renderer in the background.

The server starts answering at once; the first session waits only for what is not loaded yet
(the store's lock), instead of every start-up waiting for the whole load.
"""

from galexplore.explorer.server import start_warming

start_warming()

"""The atlas on disk: its files and manifest (`files`), catalog exports (`export`) and where
atlases live when no folder is given (`locations`)."""

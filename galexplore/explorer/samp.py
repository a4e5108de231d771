"""SAMP, both ways: the explorer as a client of the hub that TOPCAT, Aladin or DS9 runs.

Out, the explorer sends tables (`table.load.votable`: the selection, a galaxy and its similar
galaxies, the whole catalogue) and points sky viewers at a position (`coord.pointAt.sky`). In, a
row selection or highlight that TOPCAT makes on a table the explorer sent comes back as atlas
rows, and a position that Aladin or DS9 points at comes back as (ra, dec) for the page to find.

SAMP is a protocol of one desktop: the hub's lockfile is in the user's home folder, and the URL
of a table sent is a file on this machine. An explorer served beyond localhost runs on a machine
that is not the user's, so `SampLink` does not connect there and says why; the page offers the
download instead (docs/explorer.md, "SAMP").

The hub calls back on its own thread: the callbacks given to `SampLink` must hand their work to
the page's document (the explorer does, with `pn.state.execute`).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas.export import export_selection
from galexplore.errors import GalexploreError

__all__ = ["SampLink", "SampStatus", "SELECT_ROWS", "HIGHLIGHT_ROW", "POINT_AT_SKY", "LOAD_VOTABLE"]

LOAD_VOTABLE = "table.load.votable"
SELECT_ROWS = "table.select.rowList"
HIGHLIGHT_ROW = "table.highlight.row"
POINT_AT_SKY = "coord.pointAt.sky"

NO_HUB = "no SAMP hub is running on this machine: start TOPCAT, Aladin or DS9 (each runs one), then connect"
SHARED_SERVER = ("this explorer is served to other machines, and a SAMP hub here would be the server's, "
                 "not yours: use the download buttons and open the file in TOPCAT")


@dataclass(frozen=True)
class SampStatus:
    """Whether the link is connected, and a line for the page that says so."""

    connected: bool
    message: str


@dataclass(frozen=True)
class _SentTable:
    rows: np.ndarray  # atlas row of each table row, in table order
    url: str


class SampLink:
    """One explorer session's SAMP client.

    `on_rows(rows)` receives the atlas rows of a `table.select.rowList` on a table this link
    sent, `on_row(row)` the atlas row of a `table.highlight.row`, and `on_position(ra, dec)` a
    `coord.pointAt.sky`. `hub_params` names a hub (its lockfile's content: tests pass their own
    hub's); otherwise the hub is found as SAMP says, from `$SAMP_HUB` or `~/.samp`.
    """

    def __init__(self, name: str, *, on_rows: Callable[[np.ndarray], None] | None = None,
                 on_row: Callable[[int], None] | None = None,
                 on_position: Callable[[float, float], None] | None = None,
                 hub_params: dict[str, str] | None = None, shared: bool = False) -> None:
        self.name = name
        self._on_rows, self._on_row, self._on_position = on_rows, on_row, on_position
        self._hub_params = hub_params
        self._shared = shared
        self._client: Any = None
        self._tables: dict[str, _SentTable] = {}
        self._folder: Path | None = None
        self._lock = threading.Lock()
        self._status = SampStatus(False, SHARED_SERVER if shared else "not connected to a SAMP hub")

    @property
    def status(self) -> SampStatus:
        return self._status

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    @property
    def public_id(self) -> str | None:
        """This client's id on the hub (what another client addresses a message to)."""
        return self._client.get_public_id() if self.connected else None

    def connect(self) -> SampStatus:
        """Join the hub if one is running; never raises for a missing or unreachable hub."""
        if self._shared:
            return self._status
        if self.connected:
            return self._status
        from pyvo.samp import SAMPClientError, SAMPHubError, SAMPIntegratedClient, SAMPProxyError

        client = SAMPIntegratedClient(name=f"galexplore: {self.name}",
                                      description="galexplore explorer: a map of galaxy representations")
        try:
            client.connect(hub_params=self._hub_params)
        except (SAMPHubError, SAMPClientError, SAMPProxyError, OSError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._status = SampStatus(False, f"{NO_HUB} ({detail})")
            return self._status
        for mtype in (SELECT_ROWS, HIGHLIGHT_ROW, POINT_AT_SKY):
            client.bind_receive_message(mtype, self._receive)
        self._client = client
        self._status = SampStatus(True, f"connected to the SAMP hub as {client.get_public_id()}")
        return self._status

    def disconnect(self) -> None:
        """Leave the hub and delete the table files sent (safe to call twice)."""
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                client.disconnect()
            except Exception:  # the hub may be gone already; leaving is best effort
                pass
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._tables.clear()
        if not self._shared:
            self._status = SampStatus(False, "not connected to a SAMP hub")

    def send_table(self, catalog: pd.DataFrame, rows: np.ndarray, name: str) -> str:
        """Send the catalog rows `rows` (object_id, ra, dec first, then every column) as a VOTable
        to every client that loads tables; returns the table id that TOPCAT's messages name."""
        self._require()
        rows = np.asarray(rows, np.int64).ravel()
        data = export_selection(catalog, rows, "votable")
        table_id = f"galexplore-{uuid.uuid4().hex[:12]}"
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="galexplore-samp-"))
            path = self._folder / f"{table_id}.vot"
            path.write_bytes(data)
            url = path.as_uri()
            self._tables[table_id] = _SentTable(rows, url)
        self._client.enotify_all(LOAD_VOTABLE, url=url, **{"table-id": table_id, "name": name})
        return table_id

    def point_at(self, ra: float, dec: float) -> None:
        """Point every sky viewer (Aladin, DS9) at (ra, dec) in degrees."""
        self._require()
        self._client.enotify_all(POINT_AT_SKY, ra=repr(float(ra)), dec=repr(float(dec)))

    def _require(self) -> None:
        if not self.connected:
            raise GalexploreError(self._status.message)

    def _receive(self, private_key: str, sender_id: str, msg_id: str | None, mtype: str,
                 params: dict[str, Any], extra: dict[str, Any]) -> None:
        """One incoming message (a notification, or a call that gets a reply)."""
        try:
            self._dispatch(mtype, params)
            response = {"samp.status": "samp.ok", "samp.result": {}}
        except (KeyError, ValueError, IndexError) as exc:
            response = {"samp.status": "samp.error", "samp.error": {"samp.errortxt": str(exc)}}
        if msg_id is not None and self._client is not None:
            self._client.reply(msg_id, response)

    def _dispatch(self, mtype: str, params: dict[str, Any]) -> None:
        if mtype == POINT_AT_SKY:
            if self._on_position is not None:
                self._on_position(float(params["ra"]), float(params["dec"]))
            return
        table = self._sent(params)
        if table is None:  # a table this link did not send: not ours to act on
            return
        if mtype == SELECT_ROWS:
            index = np.asarray([int(r) for r in params["row-list"]], np.int64)
            if index.size and (index.min() < 0 or index.max() >= len(table.rows)):
                raise IndexError(f"row-list names rows outside the table's {len(table.rows)} rows")
            if self._on_rows is not None:
                self._on_rows(np.unique(table.rows[index]))
        elif mtype == HIGHLIGHT_ROW:
            row = int(params["row"])
            if not 0 <= row < len(table.rows):
                raise IndexError(f"row {row} is outside the table's {len(table.rows)} rows")
            if self._on_row is not None:
                self._on_row(int(table.rows[row]))

    def _sent(self, params: dict[str, Any]) -> _SentTable | None:
        """The table a message names, by its table id or else by its URL."""
        with self._lock:
            table_id = params.get("table-id")
            if table_id in self._tables:
                return self._tables[table_id]
            url = params.get("url")
            return next((t for t in self._tables.values() if url and t.url == url), None)

"""SAMP both ways, against a real hub (pyvo's SAMPHubServer) and a second client standing in for
TOPCAT: the table that arrives parses with astropy and holds the rows sent; a rowList, a
highlight and a pointAt sent back reach the explorer as atlas rows and positions; no hub is a
message, never an exception."""

from __future__ import annotations

import io
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyvo")

from pyvo.samp import SAMPHubServer, SAMPIntegratedClient  # noqa: E402

from galexplore.errors import GalexploreError  # noqa: E402
from galexplore.explorer.samp import HIGHLIGHT_ROW, NO_HUB, POINT_AT_SKY, SELECT_ROWS, SHARED_SERVER, SampLink  # noqa: E402


@pytest.fixture
def hub(tmp_path: Path):
    server = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "samp-hub"), mode="multiple")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def catalog() -> pd.DataFrame:
    n = 50
    return pd.DataFrame({"z_spec": np.linspace(0.01, 0.3, n), "object_id": np.arange(1000, 1000 + n),
                         "ra": np.linspace(10, 20, n), "dec": np.linspace(-5, 5, n),
                         "kind": pd.Categorical(["spiral", "elliptical"] * (n // 2))})


class Topcat:
    """A SAMP client that loads tables and remembers them, as TOPCAT does."""

    def __init__(self, hub: SAMPHubServer) -> None:
        self.client = SAMPIntegratedClient(name="topcat-stand-in")
        self.client.connect(hub_params=hub.params)
        self.tables: list[dict] = []
        self.points: list[tuple[float, float]] = []
        self.arrived = threading.Event()
        self.client.bind_receive_notification("table.load.votable", self._table)
        self.client.bind_receive_notification(POINT_AT_SKY, self._point)

    def _table(self, private_key, sender_id, mtype, params, extra) -> None:
        self.tables.append(params)
        self.arrived.set()

    def _point(self, private_key, sender_id, mtype, params, extra) -> None:
        self.points.append((float(params["ra"]), float(params["dec"])))
        self.arrived.set()

    def wait(self) -> None:
        assert self.arrived.wait(10), "nothing arrived from the explorer"
        self.arrived.clear()


def _eventually(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the message did not arrive"
        time.sleep(0.02)


def test_a_selection_round_trip_through_the_hub(hub, catalog) -> None:
    received: dict[str, list] = {"rows": [], "row": [], "position": []}
    link = SampLink("demo", hub_params=hub.params, on_rows=received["rows"].append,
                    on_row=received["row"].append, on_position=lambda ra, dec: received["position"].append((ra, dec)))
    topcat = Topcat(hub)
    try:
        assert link.connect().connected
        selection = np.array([3, 7, 8, 40])
        table_id = link.send_table(catalog, selection, "demo selection")
        topcat.wait()
        sent = topcat.tables[0]
        assert sent["table-id"] == table_id and sent["name"] == "demo selection"
        from astropy.io.votable import parse_single_table

        with urllib.request.urlopen(sent["url"]) as f:
            table = parse_single_table(io.BytesIO(f.read())).to_table()
        assert table.colnames[:3] == ["object_id", "ra", "dec"] and "z_spec" in table.colnames
        assert list(table["object_id"]) == list(catalog["object_id"].iloc[selection])

        # TOPCAT selects the table's rows 1 and 3, then highlights row 2, then Aladin points
        topcat.client.enotify(link.public_id, SELECT_ROWS, **{"table-id": table_id, "url": sent["url"],
                                                             "row-list": ["1", "3"]})
        _eventually(lambda: received["rows"])
        np.testing.assert_array_equal(received["rows"][0], [7, 40])
        reply = topcat.client.ecall_and_wait(link.public_id, HIGHLIGHT_ROW, "5",
                                             **{"table-id": table_id, "url": sent["url"], "row": "2"})
        assert reply["samp.status"] == "samp.ok" and received["row"] == [8]
        topcat.client.enotify(link.public_id, POINT_AT_SKY, ra="15.5", dec="-1.25")
        _eventually(lambda: received["position"])
        assert received["position"] == [(15.5, -1.25)]

        # a table the explorer did not send is not its to act on; a row outside it is an error reply
        topcat.client.enotify(link.public_id, SELECT_ROWS, **{"table-id": "other", "url": "file:///x", "row-list": ["0"]})
        reply = topcat.client.ecall_and_wait(link.public_id, HIGHLIGHT_ROW, "5",
                                             **{"table-id": table_id, "url": sent["url"], "row": "99"})
        assert reply["samp.status"] == "samp.error" and "outside the table's 4 rows" in reply["samp.error"]["samp.errortxt"]
        assert len(received["rows"]) == 1 and received["row"] == [8]

        link.point_at(12.0, 3.5)
        topcat.wait()
        assert topcat.points == [(12.0, 3.5)]
    finally:
        link.disconnect()
        topcat.client.disconnect()
    assert not link.connected and not link.status.connected


def test_no_hub_is_a_message_not_an_exception(tmp_path: Path, catalog, monkeypatch) -> None:
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:file://{tmp_path / 'no-such-lockfile'}")
    link = SampLink("demo")
    status = link.connect()
    assert not status.connected and status.message.startswith(NO_HUB)
    with pytest.raises(GalexploreError, match="no SAMP hub is running"):
        link.send_table(catalog, np.array([0]), "x")
    link.disconnect()


def test_a_shared_server_does_not_join_the_servers_hub(hub) -> None:
    link = SampLink("demo", hub_params=hub.params, shared=True)
    assert link.connect() == link.status and not link.connected
    assert link.status.message == SHARED_SERVER


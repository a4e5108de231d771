"""Many users at once: concurrent browser sessions against one served explorer.

    .venv/bin/python bench/load_test.py [ATLAS] [--sessions 20] [--seconds 120] [--seed 0]

Serves ATLAS (default: the 1,000,000-galaxy scale atlas) with `panel serve app/` as
`galexplore serve` does, opens --sessions pages in one headless Chromium (Debian's, as the
browser tests), and lets each session pan, zoom, change the colouring, lasso, click, find a
galaxy and export, at random, looking at each answer for --think seconds, for --seconds. The
server runs at a higher priority than the browser (when run as root): the browsers stand in for
people on their own machines. Prints one JSON object:

- latencies per action (p50, p95, max, count): seconds from the action in the page to the first
  large websocket frame the page receives after it (a new map image or gallery: what the person
  waits for), timed by the page's own clock, so queueing behind other sessions counts; for pans
  and zooms also `<action>_taken`, the seconds until the page's map moved with the gesture (the
  page's own backlog: twenty pages share these cores with the server);
- errors: console and page errors, server tracebacks, actions whose answer never came within
  30 s (for a pan or zoom, 30 s of the page taking it; one it never took is listed apart);
- cross-talk: each session finds galaxies only it asks for and must see exactly those in its own
  gallery, and each export must hold as many rows as its own page says are selected;
- the server's resident memory before any session, with every session open, and at the end;
- the CPU the server and the whole machine used while the sessions ran (the browsers share the cores).

Exit status 1 when any error or cross-talk was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium on a closed network: no background connections (see the env notes).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ACTIONS = ("pan", "zoom", "colour", "lasso", "click", "find", "export")
LARGE_FRAME = 8_000  # bytes: a websocket frame this large carries an image (map or gallery)
ANSWER_TIMEOUT = 30.0  # seconds an action may wait for its answer before it counts as an error
# An export is the whole file, base64 in a websocket message that the page decodes before the
# download starts: 20 MB of CSV for 125,000 galaxies (1.6-2 s with 3 sessions on these 2 cores)
EXPORT_TIMEOUT = 60.0
SELECTED = re.compile(r"([\d,]+) selected")
OTHERS_TARGETS: set[str] = set()  # every session's find targets (disjoint between sessions)
SCREENSHOTS: Path | None = None  # --screenshots: where a page is saved when an answer never came


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used so far: by process `pid` (user + system), or by the whole machine (all cores, not idle)."""
    ticks = os.sysconf("SC_CLK_TCK")
    if pid is not None:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(cpu) - cpu[3] - cpu[4]) / ticks  # every state but idle and iowait


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _before_the_browser() -> None:
    """Run the server ahead of the browser on this machine (root may raise a priority; others
    cannot, and the server then shares the cores evenly): the sessions' browsers stand in for
    people on their own machines, so their rendering should not be what the server waits for."""
    try:
        os.nice(-10)
    except PermissionError:
        pass


def serve(atlas: Path, port: int, log: Path) -> subprocess.Popen:
    """`panel serve app/` on `port` (as `galexplore serve` runs it), answering once this returns."""
    from galexplore.cli import serve_command

    server = subprocess.Popen(serve_command(atlas.resolve(), port, origins=[f"127.0.0.1:{port}"]),
                              stdout=log.open("w"), stderr=subprocess.STDOUT, preexec_fn=_before_the_browser)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # answering, and warm (app/setup.py says when)
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}); see {log}")
        if " warm in " in log.read_text():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=60)
                return server
            except urllib.error.HTTPError:
                return server
            except OSError:
                pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the server did not answer and warm within 300 s; see {log}")


def after_close_mb(pid: int) -> int:
    """The server's memory once it has dropped the closed pages' sessions: Bokeh drops a session
    without a connection after the unused-session lifetime, at its next check (every 17 s)."""
    from galexplore.cli import UNUSED_SESSION_LIFETIME_MS

    time.sleep(UNUSED_SESSION_LIFETIME_MS / 1000 + 17 + 10)
    return round(rss_mb(pid))


@dataclass
class Session:
    """One person's page: what they did, how long each answer took, what went wrong."""

    index: int
    page: object
    own_ids: list[str]
    latencies: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    errors: list[str] = field(default_factory=list)
    crosstalk: list[str] = field(default_factory=list)
    box: dict | None = None
    shown_id: str | None = None  # the galaxy this session's last find put in the gallery
    not_taken: list[str] = field(default_factory=list)  # gestures the page's map did not take
    done: bool = False

    async def listen(self) -> None:
        """Record the page's errors, and the large frames it receives (`LARGE_FRAMES`, before it loads)."""
        await self.page.add_init_script(LARGE_FRAMES)
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text} ({m.location.get('url', '')})")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    async def answered(self, action: str, since: float, nothing_to_show=None, shown=None, taken=None) -> None:
        """Wait for the first large frame the page receives after `since` (page time, ms), or for `shown`;
        record the latency, or an error when none came within ANSWER_TIMEOUT.

        nothing_to_show: a coroutine function saying, when no frame came within a few seconds,
        that the action changed nothing on screen (a lasso around empty space), so none was due.
        shown: a coroutine function saying the answer is on the page (for answers that may come
        in small frames: a gallery without cutouts, a selection's count).
        taken: a coroutine function saying whether the page has taken the gesture (its map moved,
        so it asked the server for the new view). A page whose own work delays the gesture has the
        ANSWER_TIMEOUT counted from the moment it took it (the delay is reported as `<action>_taken`);
        a gesture it never took asked the server nothing and is counted apart, not as an error.
        """
        began = time.monotonic()
        deadline, taken_at = began + ANSWER_TIMEOUT, None
        while time.monotonic() < deadline:
            if taken is not None and taken_at is None and await taken():
                taken_at = await page_now(self.page)
                deadline = time.monotonic() + ANSWER_TIMEOUT
            frame = await self.page.evaluate("([since, ms]) => window.__largeFrameAfter(since, ms)", [since, 250])
            if frame is not None:
                self.latencies[action].append((frame - since) / 1000)
                taken_at = frame if taken_at is None else min(taken_at, frame)  # it moved before its answer came
                break
            if shown is not None and await shown():
                self.latencies[action].append((await page_now(self.page) - since) / 1000)
                break
            if nothing_to_show is not None and time.monotonic() > began + 3 and await nothing_to_show():
                self.latencies.setdefault(f"{action}_empty", []).append((await page_now(self.page) - since) / 1000)
                return
        else:
            if taken is not None and taken_at is None:
                self.not_taken.append(action)
                return
            self.errors.append(f"{action}: no answer within {ANSWER_TIMEOUT:.0f} s"
                               + (f" of the page taking it ({(taken_at - since) / 1000:.1f} s after)" if taken_at else ""))
            if SCREENSHOTS:
                await self.page.screenshot(path=SCREENSHOTS / f"no-answer-{self.index}-{action}-{began:.0f}.png")
            return
        if taken is not None and taken_at is not None:
            self.latencies.setdefault(f"{action}_taken", []).append((taken_at - since) / 1000)


# Recorded in the page, not through the browser's debugging protocol: a listener there would copy
# every frame (megabytes per map image, for 20 pages) out to this process and load the cores the
# server and the pages share.
LARGE_FRAMES = """(() => {
    const times = [];
    const waiting = new Set();
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener("message", (event) => {
                const data = event.data;
                const size = typeof data === "string" ? data.length : (data.byteLength ?? data.size ?? 0);
                if (size < %d) return;
                const now = performance.now();
                times.push(now);
                for (const wake of waiting) wake(now);
            });
        }
    };
    // the time of the first large frame after `since`, waiting at most `ms` for one; null when none came
    window.__largeFrameAfter = (since, ms) => {
        const seen = times.find((t) => t > since);
        if (seen !== undefined) return Promise.resolve(seen);
        return new Promise((resolve) => {
            const wake = (t) => { waiting.delete(wake); clearTimeout(timer); resolve(t); };
            const timer = setTimeout(() => { waiting.delete(wake); resolve(null); }, ms);
            waiting.add(wake);
        });
    };
})()""" % LARGE_FRAME


async def page_now(page) -> float:
    """The page's clock (performance.now(), ms): the answers' times are read on it."""
    return await page.evaluate("performance.now()")


async def map_box(page) -> dict:
    """The inner part of the map's canvas (the largest canvas), away from axes and toolbar."""
    boxes = [await c.bounding_box() for c in await page.locator("canvas").all()]
    canvas = max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])
    return {"x": canvas["x"] + 0.2 * canvas["width"], "y": canvas["y"] + 0.15 * canvas["height"],
            "width": 0.55 * canvas["width"], "height": 0.65 * canvas["height"]}


MAP_VIEW = """() => {
    const views = [];
    for (const doc of window.Bokeh.documents)
        for (const m of doc._all_models.values())
            if (m.x_range && m.y_range && m.renderers && m.x_range.start !== undefined)
                views.push([m.x_range.start, m.x_range.end, m.y_range.start, m.y_range.end]);
    return views;
}"""


async def map_view(page) -> list:
    """The ranges every plot of the page shows, as the browser holds them (moved by a pan before any answer)."""
    return await page.evaluate(MAP_VIEW)


async def bold_texts(page) -> list[str]:
    """The page's bold texts: the selection's count and the gallery's galaxy are among them."""
    return [t.strip() for t in await page.locator("b").all_inner_texts()]


def changed(page, before: list[str]):
    """A `shown` check for answers whose change can be read on the page (a count, a gallery header),
    so an answer that came in small frames is not taken for none."""
    async def shown() -> bool:
        return await bold_texts(page) != before
    return shown


async def tool(page, name: str) -> None:
    """Make the map's tool `name` the active one (a click on an active tool would switch it off)."""
    icon = page.locator(f".bk-tool-icon-{name}").first
    if not await icon.evaluate("e => (e.getRootNode().host || e).classList.contains('bk-active')"):
        await icon.click()


async def act(session: Session, action: str, rng: random.Random, colours: list[str]) -> None:
    page, box = session.page, session.box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = await map_view(page) if action in ("pan", "zoom") else None

    async def taken() -> bool:  # did the map move with the gesture (before any answer)? True when unknown
        return not before or await map_view(page) != before

    if action == "pan":
        await tool(page, "pan")
        # timed from the drag's start: the map may ask for its new view while it is dragged (ranges
        # stream as they change), and on a loaded page that answer can come before the button is up
        start = await page_now(page)
        await page.mouse.move(cx, cy)
        await page.mouse.down()
        await page.mouse.move(cx + rng.uniform(-60, 60), cy + rng.uniform(-60, 60), steps=5)
        await page.mouse.up()
        await session.answered(action, start, taken=taken)
    elif action == "zoom":
        await page.mouse.move(cx + rng.uniform(-50, 50), cy + rng.uniform(-50, 50))
        start = await page_now(page)
        await page.mouse.wheel(0, rng.choice([-240, 240]))
        await session.answered(action, start, taken=taken)
    elif action == "colour":
        select = page.locator("select").first
        current = await select.input_value()
        start = await page_now(page)
        await select.select_option(rng.choice([c for c in colours if c != current]))  # a change, so an answer is due
        await session.answered(action, start)
    elif action == "lasso":
        await tool(page, "lasso-select")
        count_before = await bold_texts(page)
        x0, y0 = box["x"] + rng.uniform(0, 0.3) * box["width"], box["y"] + rng.uniform(0, 0.3) * box["height"]
        x1, y1 = x0 + rng.uniform(0.3, 0.7) * box["width"], y0 + rng.uniform(0.3, 0.7) * box["height"]
        await page.mouse.move(x0, y0)
        await page.mouse.down()
        for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0)]:
            await page.mouse.move(x, y, steps=4)
        start = await page_now(page)
        await page.mouse.up()

        async def empty() -> bool:
            return await page.get_by_text("no selection").count() > 0

        await session.answered(action, start, empty, shown=changed(page, count_before))
    elif action == "click":
        session.shown_id = None
        await tool(page, "tap-select")
        bold = await bold_texts(page)
        start = await page_now(page)
        await page.mouse.click(box["x"] + rng.uniform(0.1, 0.9) * box["width"],
                               box["y"] + rng.uniform(0.1, 0.9) * box["height"])
        await session.answered(action, start, shown=changed(page, bold))
    elif action == "find":
        # another galaxy than the one shown: asking again for the shown one changes nothing, so no answer is due
        wanted = rng.choice([i for i in session.own_ids if i != session.shown_id])
        search = page.get_by_placeholder(re.compile("object_id"))
        await search.fill(str(wanted))
        header = page.locator("b").filter(has_text=re.compile(rf"^{re.escape(wanted)}$"))

        async def shown() -> bool:
            return await header.count() > 0

        start = await page_now(page)
        await search.press("Enter")
        await session.answered(action, start, shown=shown)
        session.shown_id = wanted
        try:  # the gallery's header names the galaxy in bold: this session's, never another's
            await header.first.wait_for(timeout=ANSWER_TIMEOUT * 1000)
        except Exception:
            shown = [t.strip() for t in await page.locator("b").all_inner_texts()]
            foreign = [t for t in shown if t in OTHERS_TARGETS and t not in session.own_ids]
            if foreign:  # another session's galaxy: only its own searches could have put it there
                session.crosstalk.append(f"session {session.index} asked for {wanted}; its page shows {foreign}")
            else:
                session.errors.append(f"find {wanted}: not shown within {ANSWER_TIMEOUT:.0f} s (page shows {shown[:3]})")
    elif action == "export":
        await page.get_by_text("Selection", exact=True).click()
        text = await page.get_by_text(SELECTED).first.inner_text(timeout=2000) if await page.get_by_text(SELECTED).count() else ""
        match = SELECTED.search(text)
        if not match:
            return  # nothing selected yet: nothing to export
        shown = int(match.group(1).replace(",", ""))
        start = time.monotonic()
        async with page.expect_download(timeout=EXPORT_TIMEOUT * 1000) as info:
            await page.get_by_text("Download the selection").click()
        download = await info.value
        session.latencies[action].append(time.monotonic() - start)
        path = await download.path()
        with open(path, newline="") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1
        if rows != shown:
            session.crosstalk.append(f"session {session.index}: its page says {shown:,} selected, its export has {rows:,} rows")
        await page.get_by_text("Galaxy", exact=True).click()


async def run_session(session: Session, url: str, seconds: float, rng: random.Random, colours: list[str],
                      actions: tuple[str, ...] = ACTIONS, think: tuple[float, float] = (1.0, 4.0)) -> None:
    page = session.page
    start = time.monotonic()
    await page.goto(url, timeout=120_000)
    await page.wait_for_selector("canvas", timeout=120_000)
    session.latencies.setdefault("open", []).append(time.monotonic() - start)
    await page.wait_for_timeout(1500)
    session.box = await map_box(page)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        action = rng.choice(actions)
        try:
            await act(session, action, rng, colours)
        except Exception as exc:  # recorded as this session's error; the others go on
            session.errors.append(f"{action}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        await page.wait_for_timeout(1000 * rng.uniform(*think))  # a person looks before the next move


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {"count": len(values), "p50_s": round(statistics.median(values), 3), "p95_s": round(p95, 3),
            "max_s": round(values[-1], 3)}


async def drive(url: str, n: int, seconds: float, seed: int, object_ids: list[str], colours: list[str],
                server_pid: int, actions: tuple[str, ...] = ACTIONS, think: tuple[float, float] = (1.0, 4.0)) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        sessions = []
        for i in range(n):
            context = await browser.new_context(viewport={"width": 1400, "height": 850}, accept_downloads=True)
            rows = [i + n * k for k in random.Random(seed * 1000 + i).sample(range(len(object_ids) // n), 5)]
            ids = [object_ids[r] for r in rows]  # rows = i mod n: no two sessions look for the same galaxy
            OTHERS_TARGETS.update(ids)
            session = Session(i, await context.new_page(), ids)
            await session.listen()
            sessions.append(session)
        memory, cpu = {}, {}
        opened = asyncio.Event()

        async def watch_memory() -> None:
            await opened.wait()
            memory["all_sessions_open_mb"] = round(rss_mb(server_pid))
            memory["timeline_mb"] = []  # every 10 s while the sessions run: bounded, or growing?
            began, server_began, machine_began = time.monotonic(), cpu_seconds(server_pid), cpu_seconds()
            while any(not s.done for s in sessions):
                memory["timeline_mb"].append(round(rss_mb(server_pid)))
                await asyncio.sleep(10)
            # who used the cores while the sessions ran: the server, or the browsers (and this driver)
            elapsed, server, machine = (time.monotonic() - began, cpu_seconds(server_pid) - server_began,
                                        cpu_seconds() - machine_began)
            cpu.update(cores=os.cpu_count(), seconds=round(elapsed, 1), server_cpu_s=round(server, 1),
                       machine_cpu_s=round(machine, 1), server_share_of_busy=round(server / max(machine, 1e-9), 3),
                       machine_busy=round(machine / (elapsed * (os.cpu_count() or 1)), 3))

        async def one(session: Session) -> None:
            try:
                await run_session(session, url, seconds, random.Random(seed * 7919 + session.index), colours, actions,
                                  think)
            finally:
                session.done = True

        async def opening() -> None:
            while not all(s.box for s in sessions):
                await asyncio.sleep(0.2)
            opened.set()

        start = time.monotonic()
        await asyncio.gather(watch_memory(), opening(), *(one(s) for s in sessions))
        wall = time.monotonic() - start
        await browser.close()
    kinds = sorted({k for s in sessions for k in s.latencies}, key=lambda k: (k.split("_")[0] not in ACTIONS, k))
    latencies = {a: summary([v for s in sessions for v in s.latencies.get(a, [])]) for a in kinds}
    return {"wall_s": round(wall, 1), "latencies": latencies, "memory": memory, "cpu": cpu,
            "errors": [f"session {s.index}: {e}" for s in sessions for e in s.errors],
            "crosstalk": [c for s in sessions for c in s.crosstalk],
            "not_taken": [f"session {s.index}: {a}" for s in sessions for a in s.not_taken],
            "actions": sum(len(v) for s in sessions for v in s.latencies.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas", nargs="?", type=Path, default=ROOT / "data" / "scale" / "atlas-1000000")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--actions", nargs="+", choices=ACTIONS, default=list(ACTIONS), help="what sessions do")
    parser.add_argument("--screenshots", type=Path, help="save each page whose answer never came here")
    parser.add_argument("--after-close", action="store_true",
                        help="after the browsers close, wait until the server has dropped their sessions and read its memory")
    parser.add_argument("--think", type=float, nargs=2, default=[1.0, 4.0], metavar=("MIN", "MAX"),
                        help="seconds a person looks at an answer before the next move (uniform)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} not found: install Debian's chromium (`make test` does)")
    global SCREENSHOTS
    SCREENSHOTS = args.screenshots
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    from galexplore.explorer.store import colourings

    from galexplore.atlas.files import open_atlas

    catalog = open_atlas(args.atlas).read_catalog()
    colours = [c for c in colourings(catalog)]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        port = free_port()
        started = time.monotonic()
        server = serve(args.atlas, port, log)
        answering = time.monotonic() - started
        try:
            before = rss_mb(server.pid)
            result = asyncio.run(drive(f"http://127.0.0.1:{port}/app", args.sessions, args.seconds, args.seed,
                                       catalog["object_id"].astype(str).tolist(), colours, server.pid,
                                       tuple(args.actions), tuple(args.think)))
            result["memory"].update(before_sessions_mb=round(before), end_mb=round(rss_mb(server.pid)))
            if args.after_close:
                result["memory"]["after_close_mb"] = after_close_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        server_log = log.read_text()
    tracebacks = server_log.count("Traceback")
    if tracebacks:
        result["errors"].append(f"server: {tracebacks} traceback(s); first: "
                                f"{server_log[server_log.index('Traceback'):][:2000]}")
    memory = result["memory"]
    if "all_sessions_open_mb" in memory:
        memory["per_session_mb"] = round((memory["all_sessions_open_mb"] - memory["before_sessions_mb"]) / args.sessions, 1)
        memory["growth_while_running_mb"] = memory["end_mb"] - memory["all_sessions_open_mb"]
    result = {"atlas": str(args.atlas), "n": len(catalog), "sessions": args.sessions, "seconds": args.seconds,
              "server_answering_s": round(answering, 1), **result}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 1 if result["errors"] or result["crosstalk"] else 0


if __name__ == "__main__":
    sys.exit(main())

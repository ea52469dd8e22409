"""The MLflow UI of a real sweep, checked in a real headless browser: ``docs/img/mlflow_runs.png``.

    python bench/mlflow_ui_screenshot.py [--out docs/img/mlflow_runs.png] [--chromium chromium]
                                         [--store DIR]   # reuse a store a previous call left

What it does, in a new temporary folder (kept with ``--keep``):

1. ``ftsweep run sweeps/demo.yaml --smoke --set smoke.pretrained=none`` — the demo's five
   methods, 2 epochs each on digits, into ``sqlite:///<tmp>/mlflow.db`` (about 1–2 min on 2
   CPUs; ``pretrained: none`` skips the one-off SimCLR pretraining);
2. an experiment tag ``mlflow.sharedViewState.ftsweep`` (MLflow's shared view state: the runs
   table's columns) selecting the param columns ``alpha``, ``eta``, ``lambda_``, ``lr``, ``temperature``,
   ``seed``, ``epochs`` (the UI orders them by name) and the ``best/val/acc`` / ``test/acc`` metrics;
3. ``mlflow ui`` on 127.0.0.1 on a free port, waited for on ``/health``;
4. headless Chromium driven over the DevTools protocol (``--remote-debugging-port``; aiohttp's
   websocket client, a Ray dependency): opens
   ``/#/experiments/<id>/runs?viewStateShareKey=ftsweep``, waits for the table, clicks every
   row expander until the version → job → trial nesting is open, and captures a 1600×1000
   screenshot (the assistant panel and the shared-view banner closed first);
5. stops Chromium and the server (by their own process ids) and writes the PNG, re-encoded
   with a 256-colour palette when that keeps it under 300 kB.

Needs ``chromium`` (``apt-get install -y chromium``) and no network.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ftsweep.cli import mlflow_ui_command

ROOT = Path(__file__).resolve().parents[1]
SHARE_KEY = "ftsweep"
PARAMS = ["alpha", "eta", "lambda_", "lr", "temperature", "seed", "epochs"]
METRICS = ["best/val/acc", "test/acc"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1600,1000",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_store(tmp: Path) -> str:
    """A real demo --smoke sweep into ``<tmp>/mlflow.db``; returns the tracking URI."""
    uri = f"sqlite:///{tmp}/mlflow.db"
    cmd = [
        sys.executable,
        "-m",
        "ftsweep",
        "run",
        str(ROOT / "sweeps" / "demo.yaml"),
        "--smoke",
        "--set",
        "smoke.pretrained=none",
        "-q",
        "--results",
        str(tmp / "results"),
        "--tracking-uri",
        uri,
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=tmp, env=env, check=True)
    return uri


def share_view_state(uri: str, experiment: str) -> str:
    """Tag the experiment with a shared view state that shows the param / metric columns."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    columns = [f"params.`{p}`" for p in PARAMS] + [f"metrics.`{m}`" for m in METRICS]
    state = {"selectedColumns": columns, "orderByKey": "attributes.start_time", "orderByAsc": True}
    client.set_experiment_tag(exp.experiment_id, f"mlflow.sharedViewState.{SHARE_KEY}", json.dumps(state))
    return exp.experiment_id


def wait_http(url: str, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{url} did not answer in {timeout:.0f} s")
        time.sleep(0.5)


async def _screenshot(devtools_port: int, url: str, settle_s: float) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{devtools_port}/json/list") as r:
            pages = [t for t in await r.json() if t.get("type") == "page"]
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 1_000_000))

            async def call(method: str, **params: object) -> dict:
                i = next(ids)
                await ws.send_json({"id": i, "method": method, "params": params})
                async for msg in ws:
                    data = json.loads(msg.data)
                    if data.get("id") == i:
                        if "error" in data:
                            raise RuntimeError(f"{method}: {data['error']}")
                        return data.get("result", {})
                raise RuntimeError("DevTools connection closed")

            async def js(expr: str) -> object:
                res = await call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
                return res.get("result", {}).get("value")

            await call(
                "Emulation.setDeviceMetricsOverride",
                width=1600,
                height=1000,
                deviceScaleFactor=1,
                mobile=False,
            )
            await call("Page.navigate", url=url)
            # the runs table is a JS app: wait for its rows, then open every nested level
            for _ in range(120):
                if (await js("document.querySelectorAll('[role=row]').length") or 0) > 2:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)
            # the assistant panel and the shared-view banner only take room
            await js(
                """document.querySelectorAll('[data-component-id="mlflow.assistant.chat_panel.close"],'
                + '[data-component-id="mlflow.experiment_page.shared_view.dismiss"]').forEach(b => b.click())"""
            )
            for _ in range(6):  # version → job → trials: one level per pass
                clicked = await js(
                    """(() => {
                      const bs = [...document.querySelectorAll('button[data-component-id*="runnamecellrenderer"]')]
                        .filter(b => !b.dataset.ftsweepClicked);
                      bs.forEach(b => { b.dataset.ftsweepClicked = '1'; b.click(); });
                      return bs.length; })()"""
                )
                if not clicked:
                    break
                await asyncio.sleep(1.5)
            await asyncio.sleep(settle_s)
            shot = await call("Page.captureScreenshot", format="png")
            return base64.b64decode(shot["data"])


def screenshot(chromium: str, url: str, settle_s: float = 3.0) -> bytes:
    port = free_port()
    profile = tempfile.mkdtemp(prefix="ftsweep-chromium-")
    proc = subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/json/version", timeout=30)
        return asyncio.run(_screenshot(port, url, settle_s))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)


def small_png(png: bytes, limit: int = 300_000) -> bytes:
    """The PNG as is, or with a 256-colour palette when it is over ``limit`` bytes."""
    if len(png) <= limit:
        return png
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "img" / "mlflow_runs.png"))
    p.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "")
    p.add_argument("--store", default=None, help="a folder with the mlflow.db of an earlier call")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    if not args.chromium:
        print("no chromium found (apt-get install -y chromium)", file=sys.stderr)
        return 2
    tmp = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="ftsweep-ui-"))
    uri = f"sqlite:///{tmp}/mlflow.db" if (tmp / "mlflow.db").is_file() else make_store(tmp)
    exp_id = share_view_state(uri, "demo-smoke")
    port = free_port()
    server = subprocess.Popen(
        mlflow_ui_command(uri, port),
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=90)
        url = f"http://127.0.0.1:{port}/#/experiments/{exp_id}/runs?viewStateShareKey={SHARE_KEY}"
        print(f"screenshot of {url}", flush=True)
        png = small_png(screenshot(args.chromium, url))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    print(f"wrote {out} ({len(png) / 1000:.0f} kB)")
    if not args.keep and not args.store:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

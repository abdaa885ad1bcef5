"""Checks, in headless Chromium, that dashboard pages fit the window: at each width, a page
must not scroll sideways (the document is no wider than the viewport; a wide table may scroll
inside its own box). Drives Chromium through the DevTools protocol (`websocket-client`).

    python3 tools/browser/layout.py --chrome chromium --base http://127.0.0.1:PORT \
        --widths 1024,1400 /sweeps/x /runs/1 ...

Prints one line per page and width; exits 1 when a page is wider than the window.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

# What overflows: the document's width beyond the viewport, and the widest elements that stick
# out (for the message).
PROBE = """(() => {
  const d = document.documentElement, w = d.clientWidth;
  const out = [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > w + 1)
    .slice(0, 3)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
  return JSON.stringify({scroll: d.scrollWidth, client: w, out});
})()"""


class Tab:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next = 0

    def call(self, method, **params):
        self.next += 1
        self.ws.send(json.dumps({"id": self.next, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chrome", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--widths", default="1024,1400")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    # Chromium's helper processes can still write to the profile for a moment after the main
    # process exits; a leftover file there must not fail the check.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        chrome = subprocess.Popen(
            [a.chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "about:blank"],
            stderr=subprocess.PIPE, text=True)
        try:
            port = None
            for line in chrome.stderr:
                if "DevTools listening on ws://" in line:
                    port = line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
                    break
            if port is None:
                sys.exit("layout: Chromium did not open its DevTools port")
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            page = next(t for t in targets if t["type"] == "page")
            tab = Tab(page["webSocketDebuggerUrl"])
            tab.call("Page.enable")
            failed = 0
            for path in a.paths:
                for width in widths:
                    tab.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                             deviceScaleFactor=1, mobile=False)
                    tab.call("Page.navigate", url=a.base + path)
                    deadline = time.time() + 20
                    while time.time() < deadline:
                        state = tab.call("Runtime.evaluate", expression="document.readyState")
                        if state["result"].get("value") == "complete":
                            break
                        time.sleep(0.1)
                    r = json.loads(tab.call("Runtime.evaluate", expression=PROBE)["result"]["value"])
                    if r["scroll"] > r["client"]:
                        failed = 1
                        print(f"FAIL {path} at {width} px: the page is {r['scroll']} px wide; "
                              f"sticking out: {', '.join(r['out'])}")
                    else:
                        print(f"ok   {path} at {width} px: fits ({r['scroll']} px)")
            sys.exit(failed)
        finally:
            chrome.kill()
            chrome.wait()


if __name__ == "__main__":
    main()

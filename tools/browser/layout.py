"""Looks at dashboard pages in headless Chromium as a person would, at each width, and fails on
what that person would see:

- the page scrolls sideways (the document is wider than the window; a wide table may scroll
  inside its own box);
- a cell's content sticks out of its column;
- a word or number of up to 24 characters is broken across lines ("reproduc/ed", "0.18/36"),
  except after a hyphen, slash, underscore, dot or comma, where a line may end;
- a chart without axis labels or ticks, or with a tick label cut off at the chart's edge.

Every page is saved as a full-page screenshot, NAME-WIDTH.png, in --screenshots. Drives
Chromium through the DevTools protocol (`websocket-client`).

    python3 tools/browser/layout.py --chrome chromium --base http://127.0.0.1:PORT \
        --widths 1400,390 --screenshots target/screenshots /sweeps/x /runs/1 ...

--inject-css CSS adds a style sheet to every page before looking (the check's self-test breaks
a column on purpose with it and expects a failure). Prints one line per page and width; exits
1 when any page fails.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

# What a person would see, measured in the page: returns a JSON list of problems.
PROBE = r"""(() => {
  const problems = [];
  const d = document.documentElement, w = d.clientWidth;
  if (d.scrollWidth > w) {
    const out = [...document.body.querySelectorAll('*')]
      .filter(e => e.getBoundingClientRect().right > w + 1)
      .slice(0, 3)
      .map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ')[0] : ''));
    problems.push(`the page scrolls sideways: ${d.scrollWidth} px wide in a ${w} px window (sticking out: ${out.join(', ')})`);
  }
  const visible = e => {
    const s = getComputedStyle(e);
    return s.display !== 'none' && s.visibility !== 'hidden' && e.getClientRects().length > 0;
  };
  // Cells whose content sticks out of their column.
  let cells = 0;
  for (const c of document.querySelectorAll('td, th')) {
    if (!visible(c) || cells >= 5) continue;
    const box = c.getBoundingClientRect();
    const r = document.createRange();
    r.selectNodeContents(c);
    const content = r.getBoundingClientRect();
    if (content.width > 0 && (content.right > box.right + 1 || content.left < box.left - 1)) {
      cells++;
      problems.push(`a cell's content sticks out of its column by ${Math.round(content.right - box.right)} px: "${c.textContent.trim().slice(0, 40)}"`);
    }
  }
  // Words and numbers broken across lines.
  const breakable = /[-\/_.,·:]/;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let broken = 0;
  for (let n = walker.nextNode(); n && broken < 5; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest('svg, script, style, textarea, select, option') || !visible(p)) continue;
    for (const m of n.data.matchAll(/\S+/g)) {
      // Longer strings (hashes, paths, JSON) may break where they must.
      if (m[0].length < 2 || m[0].length > 24) continue;
      const r = document.createRange();
      r.setStart(n, m.index);
      r.setEnd(n, m.index + m[0].length);
      const lines = [...r.getClientRects()].filter(q => q.width > 0);
      if (lines.length < 2 || lines.every(q => Math.abs(q.top - lines[0].top) < 2)) continue;
      // Where the line ends: after which character.
      let prevTop = null, bad = [];
      for (let i = 0; i < m[0].length; i++) {
        const c = document.createRange();
        c.setStart(n, m.index + i);
        c.setEnd(n, m.index + i + 1);
        const q = [...c.getClientRects()].find(q => q.width > 0);
        if (!q) continue;
        if (prevTop !== null && Math.abs(q.top - prevTop) >= 2 && !breakable.test(m[0][i - 1])) bad.push(i);
        prevTop = q.top;
      }
      if (bad.length) {
        broken++;
        let shown = m[0];
        for (const i of bad.reverse()) shown = shown.slice(0, i) + '/' + shown.slice(i);
        problems.push(`text broken inside a word or number: "${shown}"`);
      }
    }
  }
  // Charts: axis labels and ticks, none cut off at the chart's edge.
  document.querySelectorAll('svg.chart').forEach((svg, k) => {
    const name = svg.getAttribute('aria-label') || `chart ${k + 1}`;
    const labels = svg.querySelectorAll('.axis-label').length;
    const ticks = svg.querySelectorAll('.tick').length;
    if (labels < 1 || ticks < 2) {
      problems.push(`chart "${name}" lacks axes: ${labels} axis label(s), ${ticks} tick(s)`);
    }
    const frame = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBoundingClientRect();
      if (b.width > 0 && (b.left < frame.left - 1 || b.right > frame.right + 1 || b.top < frame.top - 1 || b.bottom > frame.bottom + 1)) {
        problems.push(`chart "${name}": the label "${t.textContent.trim().slice(0, 30)}" is cut off at the chart's edge`);
        break;
      }
    }
  });
  return JSON.stringify(problems);
})()"""


class Tab:
    def __init__(self, ws_url):
        # No Origin header: Chromium 111+ refuses DevTools connections carrying an origin it was
        # not told to allow (--remote-allow-origins); one without the header is accepted.
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
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

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"the probe failed: {r['exceptionDetails']}")
        return r["result"].get("value")


def slug(path):
    """A file name for a page's path: `/compare?runs=1,2` -> `compare-runs-1-2`."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")
    return s or "sweeps-list"


def look(tab, url, width, inject_css):
    """Load `url` at `width` px and return the problems a person would see."""
    tab.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
             deviceScaleFactor=1, mobile=width < 600)
    tab.call("Page.navigate", url=url)
    deadline = time.time() + 20
    while time.time() < deadline:
        if tab.evaluate("document.readyState") == "complete":
            break
        time.sleep(0.1)
    if inject_css:
        tab.evaluate("(() => { const s = document.createElement('style'); s.textContent = "
                     + json.dumps(inject_css) + "; document.head.appendChild(s); "
                     "return document.body.offsetHeight; })()")
    return json.loads(tab.evaluate(PROBE))


def screenshot(tab, out):
    """The whole page, as far down as it goes."""
    shot = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    with open(out, "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chrome", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--widths", default="1400,390")
    ap.add_argument("--screenshots", help="directory for NAME-WIDTH.png of every page")
    ap.add_argument("--inject-css", help="a style sheet added to every page (self-test)")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    if a.screenshots:
        os.makedirs(a.screenshots, exist_ok=True)
    # Chromium's helper processes can still write to the profile for a moment after the main
    # process exits; a leftover file there must not fail the check.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        chrome = subprocess.Popen(
            [a.chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
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
                    problems = look(tab, a.base + path, width, a.inject_css)
                    shot = ""
                    if a.screenshots:
                        out = os.path.join(a.screenshots, f"{slug(path)}-{width}.png")
                        screenshot(tab, out)
                        shot = f" ({out})"
                    if problems:
                        failed = 1
                        print(f"FAIL {path} at {width} px{shot}:")
                        for p in problems:
                            print(f"       {p}")
                    else:
                        print(f"ok   {path} at {width} px{shot}")
            sys.exit(failed)
        finally:
            chrome.kill()
            chrome.wait()


if __name__ == "__main__":
    main()

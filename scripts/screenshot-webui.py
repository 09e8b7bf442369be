#!/usr/bin/env python3
"""Take a PNG screenshot of the Temporal Web UI (or any JavaScript page) with
headless Chromium, after the page has actually rendered.

Why this file exists: the README links a screenshot of the Temporal Web UI, and
this is the script that produced it. The obvious one-liner,
``chromium --headless --screenshot=...``, gives a BLANK grey image of the UI
because it captures before the single-page app has fetched its data and drawn,
and ``--virtual-time-budget`` never finishes because the UI long-polls.

So this script drives Chromium itself over the DevTools protocol. It opens the
URL, checks ``document.body.innerText`` until every ``--wait-for`` text is
present (up to ``--timeout`` seconds), waits ``--settle`` seconds for spinners
and animations to finish, then saves the viewport as a PNG.

Dependencies: Python 3.11 standard library and a Chromium binary (Debian:
``apt-get install chromium``). It needs no pip packages and no chromedriver.
Chromium talks to this script over pipes (``--remote-debugging-pipe``), so no
debugging port is opened.

Usage:
    python3 scripts/screenshot-webui.py URL OUTPUT.png --wait-for "TEXT" \
        [--wait-for "MORE TEXT"] [--width 1440 --height 1000] [--scale 1.0] \
        [--timeout 60] [--settle 1.5] [--chromium /usr/bin/chromium]

Example (dev server UI on port 8233, workflow id demo-1):
    python3 scripts/screenshot-webui.py \
        http://127.0.0.1:8233/namespaces/default/workflows/demo-1 \
        docs/webui.png --wait-for demo-1 --wait-for "Workflow Type"

TEXT is matched case-sensitively against the text as displayed, which
includes CSS text-transform. For example, the UI shows the status as "RUNNING",
not "Running". If the text never appears, the error message prints the page
text that was visible, so you can pick a better string.

Exit status: 0 when the PNG is written. 1 when the page fails to load, the text
does not appear in time (the end of the page text is printed to help you
debug), or Chromium fails. 2 for usage errors.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class Failure(Exception):
    """An error that is reported to the user as a single clear message."""


class Browser:
    """Headless Chromium controlled over the DevTools protocol through pipes.

    With --remote-debugging-pipe, Chromium reads commands from fd 3 and writes
    replies and events to fd 4. Each message is JSON followed by a NUL byte.
    """

    def __init__(self, binary: str, width: int, height: int, log_path: str, profile_dir: str):
        # to_child: we write, Chromium reads (its fd 3).
        # from_child: Chromium writes (its fd 4), we read.
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()

        def place_pipes() -> None:
            # Runs in the child before exec. First move both ends above fd 9 so
            # they cannot overwrite each other, then put them on fd 3 and 4.
            import fcntl

            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        args = [
            binary,
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile_dir}",
            f"--window-size={width},{height}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--hide-scrollbars",
            "--mute-audio",
            "--password-store=basic",
            "--use-mock-keychain",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Chromium refuses to start as root unless its sandbox is disabled.
            args.append("--no-sandbox")
        args.append("about:blank")

        self._log = open(log_path, "wb")
        self._log_path = log_path
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=(3, 4),
                preexec_fn=place_pipes,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self.session: str | None = None

    # --- protocol plumbing -------------------------------------------------

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self._from_child_r], [], [], remaining)
            if not ready:
                raise TimeoutError
            chunk = os.read(self._from_child_r, 1 << 20)
            if not chunk:
                raise Failure("Chromium exited unexpectedly.\n" + self.log_tail())
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float = 30.0) -> dict:
        """Send one command and return its result; events are ignored."""
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_child_w, data):]
        except BrokenPipeError:
            raise Failure("Chromium exited unexpectedly.\n" + self.log_tail()) from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self._read_message(deadline)
            except TimeoutError:
                raise Failure(f"Chromium did not answer {method} within {timeout:.0f} s.") from None
            if reply.get("id") != msg_id:
                continue  # an event, or a stale reply
            if "error" in reply:
                raise Failure(f"DevTools {method} failed: {reply['error'].get('message')}")
            return reply.get("result", {})

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self._log_path, "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.strip().splitlines()[-lines:])
        return f"Last Chromium output:\n{tail}" if tail else ""

    # --- high-level helpers ------------------------------------------------

    def attach_to_page(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            targets = self.call("Target.getTargets", session=False)["targetInfos"]
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                break
            if time.monotonic() > deadline:
                raise Failure("Chromium started but opened no page.")
            time.sleep(0.2)
        result = self.call("Target.attachToTarget",
                           {"targetId": pages[0]["targetId"], "flatten": True}, session=False)
        self.session = result["sessionId"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            return None
        return result.get("result", {}).get("value")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", session=False, timeout=5)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_child_w, self._from_child_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()


def find_chromium(explicit: str | None) -> str:
    if explicit:
        path = shutil.which(explicit)
        if not path:
            raise Failure(f"Chromium binary not found: {explicit}")
        return path
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise Failure("No Chromium found on PATH. Install it (Debian: apt-get install chromium) "
                  "or pass --chromium /path/to/chromium.")


def take_screenshot(args: argparse.Namespace) -> int:
    binary = find_chromium(args.chromium)
    with tempfile.TemporaryDirectory(prefix="screenshot-webui-") as tmp:
        browser = Browser(binary, args.width, args.height,
                          os.path.join(tmp, "chromium.log"), os.path.join(tmp, "profile"))
        try:
            browser.attach_to_page()
            browser.call("Page.enable")
            browser.call("Runtime.enable")
            browser.call("Emulation.setDeviceMetricsOverride", {
                "width": args.width, "height": args.height,
                "deviceScaleFactor": 1, "mobile": False,
            })

            start = time.monotonic()
            nav = browser.call("Page.navigate", {"url": args.url})
            if nav.get("errorText"):
                raise Failure(f"Could not load {args.url}: {nav['errorText']}")

            # Check the rendered text until every --wait-for string is present.
            wanted = json.dumps(args.wait_for)
            check = (f"(() => {{ const t = document.body ? document.body.innerText : '';"
                     f" return {wanted}.every(s => t.includes(s)); }})()")
            deadline = start + args.timeout
            while True:
                if browser.evaluate(check) is True:
                    break
                if time.monotonic() >= deadline:
                    text = browser.evaluate("document.body ? document.body.innerText : ''") or ""
                    missing = [s for s in args.wait_for if s not in text]
                    snippet = " ".join(text.split())[:400]
                    raise Failure(
                        f"Timed out after {args.timeout:g} s: {missing} did not appear on {args.url}.\n"
                        f"Page text so far ({len(text)} chars): {snippet!r}")
                time.sleep(0.5)
            found_after = time.monotonic() - start

            time.sleep(args.settle)  # let spinners, transitions and fonts finish
            shot = browser.call("Page.captureScreenshot", {
                "format": "png",
                "clip": {"x": 0, "y": 0, "width": args.width, "height": args.height,
                         "scale": args.scale},
            })
        finally:
            browser.close()

    png = base64.b64decode(shot["data"])
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.output, "wb") as f:
        f.write(png)
    w, h = round(args.width * args.scale), round(args.height * args.scale)
    print(f"Wrote {args.output} ({w}x{h}, {len(png) / 1024:.0f} KB); "
          f"text appeared after {found_after:.1f} s.")
    if len(png) > args.max_kb * 1024:
        print(f"Warning: the PNG is over {args.max_kb} KB; try --scale 0.75 or a smaller "
              f"--height.", file=sys.stderr)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(
        description="Screenshot a JavaScript web page (e.g. the Temporal Web UI) with headless "
                    "Chromium once the given text has rendered.")
    p.add_argument("url", help="page to open, e.g. http://127.0.0.1:8233/namespaces/default/workflows")
    p.add_argument("output", help="PNG file to write")
    p.add_argument("--wait-for", action="append", required=True, metavar="TEXT",
                   help="text that must appear in the page before the shot (case-sensitive, "
                        "as displayed, e.g. RUNNING not Running); repeat to require several")
    p.add_argument("--width", type=int, default=1440, help="viewport width in CSS pixels (1440)")
    p.add_argument("--height", type=int, default=1000, help="viewport height in CSS pixels (1000)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="scale factor of the output image, e.g. 0.75 for a smaller file (1.0)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the text before giving up (60)")
    p.add_argument("--settle", type=float, default=1.5,
                   help="seconds to wait after the text appears, before the shot (1.5)")
    p.add_argument("--max-kb", type=int, default=200,
                   help="warn if the PNG is larger than this many KB (200)")
    p.add_argument("--chromium", help="Chromium binary (default: first of "
                                      + ", ".join(CHROMIUM_CANDIDATES) + " on PATH)")
    args = p.parse_args()
    if not args.output.lower().endswith(".png"):
        p.error("OUTPUT must end in .png")
    if args.width <= 0 or args.height <= 0 or not 0 < args.scale <= 4:
        p.error("--width/--height must be positive and --scale in (0, 4]")
    try:
        return take_screenshot(args)
    except Failure as e:
        print(f"screenshot-webui: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Shared by the browser tests: where Chromium is, how it is started, the server's key, where output goes."""
from real_server import OUTPUT  # noqa: F401 (screenshots go beside the server logs)

CHROMIUM = "/usr/bin/chromium"      # Debian's package; Playwright never downloads a browser of its own here
API_KEY = "browser-key"
# Flags for a sandboxed, offline CI machine: no GPU, no sandbox (runs as root), and no background traffic.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

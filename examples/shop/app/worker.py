"""The shop's own background worker, a process deployctl knows nothing about.

It runs beside deployctl-worker in the shop's worker image, under supervisord, the way a Node
worker runs beside it under PM2. It ticks every second and says so in its ready file, which
the image's health check reads.
"""

import os
import signal
import sys
import time

VERSION = os.environ.get("SHOP_VERSION", "unknown")
READY = "/tmp/shop-worker-alive"


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"shop worker {VERSION} started", flush=True)
    while True:
        with open(READY, "w") as file:
            file.write(str(time.time()))
        time.sleep(1)


if __name__ == "__main__":
    main()

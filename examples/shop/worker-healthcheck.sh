#!/bin/sh
# Healthy when both programs are: deployctl-worker polls Temporal, and the shop's worker
# ticked within the last 10 s.
/usr/local/bin/deployctl-worker healthcheck || exit 1
[ $(( $(date +%s) - $(stat -c %Y /tmp/shop-worker-alive) )) -lt 10 ]

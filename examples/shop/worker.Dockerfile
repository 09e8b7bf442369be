# shop-worker:<version>: the shop's image plus deployctl-worker, the static binary that hosts
# deploys. Everything below the FROM line is what a team adds to its worker image.
ARG VERSION
FROM shop:${VERSION}
ARG VERSION
COPY deployctl-worker /usr/local/bin/deployctl-worker
COPY supervisord.conf /app/supervisord.conf
COPY worker-healthcheck.sh /app/worker-healthcheck.sh
# The worker's Build ID in the environment's Worker Deployment: the image version.
ENV TEMPORAL_BUILD_ID=${VERSION}
HEALTHCHECK --interval=2s --timeout=2s --retries=5 CMD ["/app/worker-healthcheck.sh"]
CMD ["supervisord", "-c", "/app/supervisord.conf"]

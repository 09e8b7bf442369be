"""The shop's API: applies its migrations as it starts, then serves on :8000.

It answers its health on /healthz and has no version endpoint: deployctl knows which colour
runs what by the container's image alone (the shop's environment leaves version_path empty).
"""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.pool

import migrate

VERSION = os.environ.get("SHOP_VERSION", "unknown")
MIGRATIONS = os.environ.get("SHOP_MIGRATIONS", "/app/prisma/migrations")


class Handler(BaseHTTPRequestHandler):
    # Keep-alive: HAProxy reuses its connections to the colour.
    protocol_version = "HTTP/1.1"
    pool = None

    def do_GET(self):
        try:
            if self.path == "/healthz":
                self.query("SELECT 1")
                self.answer(200, "text/plain", b"ok")
            elif self.path in ("/", "/products"):
                rows = self.query('SELECT "name" FROM "Product" ORDER BY "id"')
                body = {"shop": VERSION, "products": [row[0] for row in rows]}
                self.answer(200, "application/json", json.dumps(body).encode())
            else:
                self.answer(404, "text/plain", b"not found")
        except psycopg2.Error as error:
            self.answer(503, "text/plain", f"database: {error}".encode())

    def query(self, sql):
        connection = self.pool.getconn()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.rollback()
            self.pool.putconn(connection)

    def answer(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def main():
    # PID 1 gets no default SIGTERM handling: without this, `docker stop` waits its timeout.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    url = os.environ["DATABASE_URL"]
    # Not `with connection`: since psycopg2 2.9 that opens a transaction, and the migrations
    # switch between autocommit and their own transactions.
    connection = psycopg2.connect(url)
    try:
        applied = migrate.deploy(connection, MIGRATIONS)
    except migrate.MigrationError as error:
        print(error, file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        connection.close()
    print(f"shop {VERSION}: {len(applied)} migrations applied", flush=True)
    Handler.pool = psycopg2.pool.ThreadedConnectionPool(1, 16, url)
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    server.daemon_threads = True
    print(f"shop {VERSION} listening on :8000", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

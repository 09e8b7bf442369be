"""The shop's cron: one run every two seconds, each recorded in "CronRun".

Two crons at once would show as overlapping runs; deployctl stops the old one before it
starts the new one.
"""

import os
import signal
import socket
import time

import psycopg2
import psycopg2.errors

VERSION = os.environ.get("SHOP_VERSION", "unknown")


def main():
    connection = psycopg2.connect(os.environ["DATABASE_URL"])
    connection.autocommit = True
    host = socket.gethostname()
    print(f"shop cron {VERSION} on {host}", flush=True)
    # SIGTERM lets the current run finish; PID 1 would otherwise ignore it.
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    while not stopping:
        with connection.cursor() as cursor:
            try:
                cursor.execute(
                    'INSERT INTO "CronRun" ("host") VALUES (%s) RETURNING "id"', (host,)
                )
            except psycopg2.errors.UndefinedTable:
                # The API applies the migrations; the cron may start first.
                print("waiting for the first migration", flush=True)
                time.sleep(1)
                continue
            run = cursor.fetchone()[0]
            time.sleep(0.5)
            cursor.execute('UPDATE "CronRun" SET "finishedAt" = now() WHERE "id" = %s', (run,))
        time.sleep(1.5)
    print("shop cron stopped", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How long does SQLite alone take to commit a batch of renders on this machine, and how often
does it stall? (issue 31's render p99)

Copies a seeded database (`bench_seed`, as `just bench-floor`), then for SECONDS per mode commits
transactions of 32 renders' writes over its first 1,000 users back to back on one connection,
with the ledger connection's settings (WAL, synchronous = NORMAL, 32 MB cache, temp_store in
memory), and prints the distribution of the transactions' wall times:
  none: no checkpoint at all (the WAL only grows): the storage's own stalls;
  auto: SQLite's own checkpoints every 1,000 pages, in the committing transaction;
  service: as the service (wal_checkpointer.rs): a PASSIVE checkpoint every 100 ms on another
    connection and, when it found 262,144 frames or more, the database file flushed (a
    descriptor kept open, as sqlite_file_flush.rs) and a second step in the writer's turn
    (counted in the next transaction, which waits for it); the WAL flushed 10 ms after its last
    flush ended; 524,288-page autocheckpoint. The service's catch-up steps are left out.
No service, no HTTP: a render at 32 connections waits at least for the transaction it is in.

  target/release/examples/bench_seed sqlite:///tmp/s.db 4000 25 /tmp/k.txt
  python3 scripts/sqlite-write-stalls.py /tmp/s.db [SECONDS]
"""
import os
import random
import shutil
import sqlite3
import sys
import threading
import time

CONTENT = "Ada\nEngineer\n | \n\n\n\nExperience\n\n\nEducation\n"


def run(src, mode, seconds):
    db = src + ".stalls"
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(db + ext):
            os.remove(db + ext)
    shutil.copy(src, db)
    c = sqlite3.connect(db, isolation_level=None)
    c.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                    "PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")
    c.execute("PRAGMA wal_autocheckpoint = %d" % {"none": 0, "auto": 1000, "service": 524288}[mode])
    second_step, stop = threading.Event(), threading.Event()

    def checkpointer():
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("PRAGMA busy_timeout = 5000")
        kept = os.open(db, os.O_RDONLY)
        while not stop.wait(0.1):
            _, log, _ = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if log >= 262144 and not second_step.is_set():
                os.fdatasync(kept)
                second_step.set()
        other.close()

    def wal_flusher():
        while not os.path.exists(db + "-wal"):  # the first write makes it
            time.sleep(0.01)
        kept = os.open(db + "-wal", os.O_RDONLY)
        while not stop.wait(0.01):
            os.fdatasync(kept)

    if mode == "service":
        threading.Thread(target=checkpointer, daemon=True).start()
        threading.Thread(target=wal_flusher, daemon=True).start()
    users = [r[0] for r in c.execute("SELECT id FROM users ORDER BY rowid LIMIT 1000")]
    c.execute("UPDATE users SET balance = 1000000000")
    durations, k, b = [], 0, 0
    end = time.time() + seconds
    while time.time() < end:
        payers = [users[(k + i) % len(users)] for i in range(32)]
        k, b = k + 32, b + 1
        at = 1_800_000_000_000 + b
        t0 = time.perf_counter()
        if second_step.is_set():
            second_step.clear()
            c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        c.execute("BEGIN IMMEDIATE")
        for u in sorted(set(payers)):
            c.execute("UPDATE users SET balance = balance - ? WHERE id = ?", (payers.count(u), u))
        c.execute("INSERT INTO credit_ledger (user_id, delta, balance_after, reason, created_at) "
                  "VALUES " + ",".join(["(?, -1, 999, 'render', ?)"] * 32),
                  [x for u in payers for x in (u, at)])
        c.execute("INSERT INTO documents (id, user_id, template_id, content, created_at) VALUES "
                  + ",".join(["(?, ?, 'classic', ?, ?)"] * 32),
                  [x for i, u in enumerate(payers)
                   for x in ("doc_%08d%04d%08d" % (b, i, random.randrange(10**8)), u, CONTENT, at)])
        c.execute("COMMIT")
        durations.append((time.perf_counter() - t0) * 1000)
    stop.set()
    time.sleep(0.2)
    c.close()
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(db + ext):
            os.remove(db + ext)
    durations.sort()
    n, total = len(durations), sum(durations)
    q = lambda p: durations[min(n - 1, int(p * n))]
    slow = [d for d in durations if d > 10]
    print(f"{mode}: {n} transactions, {n * 32 / seconds:.0f} charges/s; p50 {q(.5):.2f} ms, "
          f"p99 {q(.99):.2f} ms, p99.9 {q(.999):.2f} ms, max {durations[-1]:.2f} ms; "
          f"over 10 ms: {len(slow) / n * 100:.2f} % of transactions, "
          f"{sum(slow) / total * 100:.1f} % of the time, {len(slow) / seconds:.1f} a second")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    for mode in ("none", "auto", "service"):
        run(sys.argv[1], mode, seconds)

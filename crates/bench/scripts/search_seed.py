#!/usr/bin/env python3
"""Seeds a kefu SQLite database with N messages for search benchmarks.

    kefu-relay migrate --database sqlite://DB
    python3 crates/bench/scripts/search_seed.py DB [MESSAGES] [--without-index]

The database must be made by the relay's own migrations first (so the
search table, its trigger and the relay's bookkeeping are the relay's);
this only inserts rows, in commits of 1,000 as the writer makes them, and
prints the time it took and the file's size. --without-index drops the
search trigger first, to measure what indexing costs the writes; such a
database cannot be searched. Queries are then timed through a running
relay with kefu-bench-search (docs/benchmarks.md).

The system's SQLite writes the rows; the relay's own (bundled, newer)
SQLite reads them: FTS5's format is the same.
"""

import os
import sqlite3
import sys
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
DB = args[0]
MESSAGES = int(args[1]) if len(args) > 1 else 1_000_000
WITHOUT_INDEX = "--without-index" in sys.argv
PER_CONVERSATION = 20

PHRASES = [
    "where is my order", "我的订单还没到", "I want the blue shirt in size M",
    "想要一件蓝色的衬衫", "can I pay by card", "退货需要多久", "thanks, that helps",
    "the tracking number does not work", "请问有优惠券吗", "is it in stock",
    "shipping to Berlin takes how long", "谢谢你的帮助", "refund please",
    "the app crashes on login", "我想修改地址", "hello?",
]


def main():
    db = sqlite3.connect(DB, isolation_level=None)
    db.execute("PRAGMA journal_mode = wal")
    if WITHOUT_INDEX:
        db.execute("DROP TRIGGER message_search_insert")
    conversations = MESSAGES // PER_CONVERSATION
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO visitors (id, name, email, created_at, updated_at) VALUES (?, ?, ?, 0, 0)",
        ((f"v{i}", f"Visitor {i}", f"user{i}@example.com") for i in range(conversations)),
    )
    db.executemany(
        "INSERT INTO conversations (id, visitor_id, status, last_seq, created_at, updated_at)"
        " VALUES (?, ?, 'resolved', ?, 0, ?)",
        ((f"c{i}", f"v{i}", PER_CONVERSATION, i) for i in range(conversations)),
    )
    db.execute("COMMIT")
    started = time.perf_counter()
    rows = (
        (f"c{i % conversations}", i // conversations + 1, f"m{i}", f"k{i}", "visitor",
         f"v{i % conversations}", "Visitor", f"{PHRASES[i % len(PHRASES)]} #{i}", i)
        for i in range(MESSAGES)
    )
    while True:
        batch = [row for _, row in zip(range(1000), rows)]
        if not batch:
            break
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO messages (conversation_id, seq, id, client_id, author_kind,"
            " author_id, author_name, text, internal, at) VALUES (?,?,?,?,?,?,?,?,0,?)",
            batch,
        )
        db.execute("COMMIT")
    took = time.perf_counter() - started
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"messages: {MESSAGES}, sqlite {sqlite3.sqlite_version}, index: {not WITHOUT_INDEX}")
    print(f"seeded in {took:.1f} s ({MESSAGES / took:,.0f} msg/s)")
    print(f"size: {os.path.getsize(DB) / 2**20:.0f} MiB")


main()

#!/usr/bin/env python3
"""Search at a million messages on SQLite: seeds a database made by the
relay's own migrations (crates/relay/migrations/sqlite) with N messages,
with and without the search trigger, and times the queries the relay's
search runs (store/sqlite/search.rs), through the system's SQLite.

    python3 crates/bench/scripts/search_sqlite.py [MESSAGES] [DIR]

Prints the seeding time with and without the index, the database sizes,
and p50/p99 per query kind. See docs/benchmarks.md.
"""

import glob
import os
import sqlite3
import statistics
import sys
import time

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
DIR = sys.argv[2] if len(sys.argv) > 2 else "/tmp/kefu-search-bench"
PER_CONVERSATION = 20
ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "relay", "migrations", "sqlite")

PHRASES = [
    "where is my order", "我的订单还没到", "I want the blue shirt in size M",
    "想要一件蓝色的衬衫", "can I pay by card", "退货需要多久", "thanks, that helps",
    "the tracking number does not work", "请问有优惠券吗", "is it in stock",
    "shipping to Berlin takes how long", "谢谢你的帮助", "refund please",
    "the app crashes on login", "我想修改地址", "hello?",
]


def migrated(path, with_index):
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = wal")
    for name in sorted(glob.glob(os.path.join(ROOT, "*.sql"))):
        db.executescript(open(name, encoding="utf-8").read())
    if not with_index:
        db.execute("DROP TRIGGER message_search_insert")
    return db


def seed(db):
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
    # Batches of 1,000 as the writer commits them: one transaction each.
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
    return time.perf_counter() - started


HITS = """SELECT message_search.rowid, message_search.seq, message_search.text,
    c.id, v.name FROM message_search
    CROSS JOIN conversations c ON c.id = message_search.conversation_id
    CROSS JOIN visitors v ON v.id = c.visitor_id
    WHERE {where} ORDER BY message_search.rowid DESC LIMIT 21"""
VISITORS = """SELECT c.id FROM conversations c JOIN visitors v ON v.id = c.visitor_id
    WHERE (v.name LIKE ? ESCAPE '\\' OR v.email LIKE ? ESCAPE '\\')
    ORDER BY c.updated_at DESC, c.id DESC LIMIT 20"""


def timed(db, sql, args, runs=50):
    times = []
    for run in range(runs):
        started = time.perf_counter()
        db.execute(sql, args(run)).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    # With 100 runs, the 99th is the second slowest; with fewer, the slowest.
    return statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)] if runs >= 100 else times[-1]


def main():
    os.makedirs(DIR, exist_ok=True)
    plain = os.path.join(DIR, "plain.db")
    indexed = os.path.join(DIR, "indexed.db")
    without = seed(migrated(plain, with_index=False))
    db = migrated(indexed, with_index=True)
    with_index = seed(db)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sqlite3.connect(plain).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"messages: {MESSAGES}, sqlite {sqlite3.sqlite_version}")
    print(f"seed without index: {without:.1f} s ({MESSAGES / without:,.0f} msg/s)")
    print(f"seed with index:    {with_index:.1f} s ({MESSAGES / with_index:,.0f} msg/s)")
    print(f"size without index: {os.path.getsize(plain) / 2**20:.0f} MiB")
    print(f"size with index:    {os.path.getsize(indexed) / 2**20:.0f} MiB")
    match = "message_search MATCH ?"
    like = "message_search.text LIKE ? ESCAPE '\\'"
    kinds = [
        ("common word, rare term by LIKE (tracking #n)", HITS.format(where=f"{match} AND {like}"),
         lambda r: ('"tracking"', f"%#{(r * 7919) % MESSAGES}%")),
        ("common Latin word (order)", HITS.format(where=match), lambda r: ('"order"',)),
        ("Chinese, 2 chars, common (订单)", HITS.format(where=like), lambda r: ("%订单%",)),
        ("Chinese, 2 chars, absent (火车): full scan", HITS.format(where=like),
         lambda r: ("%火车%",)),
        ("Chinese, 4 chars (蓝色的衬)", HITS.format(where=match), lambda r: ('"蓝色的衬"',)),
        ("unique number (#n, 3+ chars)", HITS.format(where=match),
         lambda r: (f'"#{(r * 7919) % MESSAGES}"',)),
        ("visitor email", VISITORS,
         lambda r: (f"%user{r * 31}@%", f"%user{r * 31}@%")),
    ]
    for name, sql, args in kinds:
        # A full scan is slow by nature: ten runs tell its time.
        p50, p99 = timed(db, sql, args, runs=10 if "full scan" in name else 100)
        print(f"{name:45} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


main()

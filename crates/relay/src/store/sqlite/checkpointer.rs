//! Copies the WAL back into the database file, on a thread of its own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, on the writer thread: copying thousands of pages and syncing
//! the file then holds up every request queued behind that commit. It was
//! the writer's largest single cost in the profile, and its pauses showed
//! in the acks' p99. Here a second connection copies instead, in `PASSIVE`
//! mode, which never blocks the writer, at most every [`CHECKPOINT_EVERY`]
//! while commits come in.
//!
//! What a passive checkpoint cannot do is start the WAL over: the log
//! restarts only when a write transaction begins with every frame already
//! copied, and the writer, busy, begins its next one while the copy is
//! still running. So once the WAL is long ([`RESTART_PAGES`]), the pass
//! asks the writer to copy the little written since, between two batches
//! ([`Checkpointer::restart_due`]); its next transaction then starts the
//! log over. Before asking, the pass flushes what it copied to the disk
//! ([`DatabaseFile::write_out`]), so that the writer's copy ends with a
//! shorter sync.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::super::StoreError;

/// How often at most the checkpointer copies the WAL. Less often copies
/// the pages that change in every batch (conversations, index interiors)
/// fewer times, and so writes less to the database file, whose syncs share
/// the disk with the writer's: at 10,000 msg/s, every second rather than
/// every 250 ms cut the acks' p90 from 35-40 ms to 23 ms (docs/benchmarks.md,
/// item 10), for a longer WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// WAL pages (4 KiB each) past which the log should start over. Each
/// restart stops the writer while it copies and syncs what came in since
/// the last pass; restarting every two passes or so rather than after each
/// took the acks' p99 at 10,000 msg/s from 64, 45, 52, 54 ms to 37, 42,
/// 37, 66 ms in alternating runs, for a WAL of about 260 MiB instead of 140
/// under that load (docs/benchmarks.md, item 14).
const RESTART_PAGES: i64 = 40_000;
/// WAL pages at which SQLite's own checkpoint runs on the writer: only a
/// backstop, should the checkpointer fall behind.
pub(super) const BACKSTOP_PAGES: i64 = 4 * RESTART_PAGES;

/// The writer's handle: tells the checkpointer about commits and hears
/// when the log should restart.
pub(super) struct Checkpointer {
    committed: Option<SyncSender<()>>,
    restart_due: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens the checkpointing connection and starts its thread, which
    /// syncs the database through `file`.
    pub fn start(path: &Path, file: DatabaseFile) -> Result<Checkpointer, StoreError> {
        Self::start_with(path, file, CHECKPOINT_EVERY, RESTART_PAGES)
    }

    fn start_with(
        path: &Path,
        file: DatabaseFile,
        every: Duration,
        restart_pages: i64,
    ) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Sync the database file before the WAL may be reused, as the
        // writer's own checkpoints do.
        conn.pragma_update(None, "synchronous", "full")?;
        let (committed, commits) = mpsc::sync_channel(1);
        let restart_due = Arc::new(AtomicBool::new(false));
        let asks_restart = restart_due.clone();
        let thread = std::thread::Builder::new()
            .name("kefu-sqlite-checkpoint".into())
            .spawn(move || {
                run(conn, &file, every, restart_pages, commits, &asks_restart);
            })
            .map_err(|error| {
                StoreError::Unavailable(format!("starting the checkpointer: {error}"))
            })?;
        Ok(Checkpointer {
            committed: Some(committed),
            restart_due,
            thread: Some(thread),
        })
    }

    /// A transaction was committed: there is something to copy.
    pub fn committed(&self) {
        if let Some(committed) = &self.committed {
            // Full means a pass is already due.
            if let Err(TrySendError::Disconnected(())) = committed.try_send(()) {
                tracing::warn!("the checkpointer is gone; the writer checkpoints alone");
            }
        }
    }

    /// Whether the writer should now copy the rest of the WAL itself, so
    /// that its next transaction restarts the log. Asked once per pass.
    pub fn restart_due(&self) -> bool {
        self.restart_due.swap(false, Ordering::Relaxed)
    }

    /// Ends the thread, after its current pass, and closes its connection:
    /// the writer's connection is then the last to write, whose close
    /// checkpoints everything (and removes the WAL, if the readers are
    /// closed by then).
    pub fn stop(mut self) {
        self.committed = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    conn: Connection,
    file: &DatabaseFile,
    every: Duration,
    restart_pages: i64,
    commits: mpsc::Receiver<()>,
    restart_due: &AtomicBool,
) {
    let mut last_pass = Instant::now();
    while commits.recv().is_ok() {
        // Let commits gather until the pass is due.
        let due = last_pass + every;
        while let Some(left) = due.checked_duration_since(Instant::now()) {
            if let Err(RecvTimeoutError::Disconnected) = commits.recv_timeout(left) {
                break;
            }
        }
        match checkpoint(&conn) {
            Ok(pages) if pages >= restart_pages => {
                file.write_out();
                restart_due.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "checkpointing the WAL"),
        }
        last_pass = Instant::now();
    }
    if let Err((_, error)) = conn.close() {
        tracing::warn!(%error, "closing the checkpointing connection");
    }
}

/// A descriptor of the database file of our own, to sync it.
///
/// Closing any descriptor of a file drops every POSIX lock the process
/// holds on it, SQLite's included, after which another process closing
/// its connection (an admin command) takes itself for the last user and
/// deletes the WAL. So it is closed only once its last clone is dropped:
/// the store keeps one until it is dropped, after closing its readers, and
/// the writer one until its connection is closed.
#[derive(Clone)]
pub(super) struct DatabaseFile(Arc<File>);

impl DatabaseFile {
    pub fn open(path: &Path) -> Result<DatabaseFile, StoreError> {
        let file = File::open(path).map_err(|error| {
            StoreError::Unavailable(format!("opening {}: {error}", path.display()))
        })?;
        Ok(DatabaseFile(Arc::new(file)))
    }

    /// Flushes what the passes copied into the file to the disk, so that
    /// the writer's own checkpoint, which must sync the file before the WAL
    /// can restart, has less left to write. (A passive pass syncs the file
    /// only when it copied the whole WAL, which under steady commits it
    /// never does: the writer then synced two seconds of copies, 15-45 ms,
    /// while every message waited; 4-20 ms since.)
    fn write_out(&self) {
        if let Err(error) = self.0.sync_data() {
            tracing::warn!(%error, "syncing the database file");
        }
    }
}

/// Copies what the WAL holds that no other connection still reads;
/// returns how many pages the WAL holds.
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    let (_busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    tracing::trace!(log, copied, "checkpoint");
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;
    /// A small mark, so that the test writes megabytes, not gigabytes.
    const RESTART: i64 = 2_000;

    fn wal_pages(path: &Path) -> u64 {
        let wal = path.with_extension("db-wal");
        std::fs::metadata(wal).map_or(0, |meta| meta.len()) / PAGE as u64
    }

    /// Under a steady stream of commits, as the writer thread makes them,
    /// the WAL is copied and starts over (by itself between passes, or when
    /// a pass asks the writer to finish the copy), instead of growing to
    /// the backstop: without the checkpointer it would reach three times
    /// the restart mark here.
    #[test]
    fn the_wal_is_copied_and_starts_over_under_steady_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kefu.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .pragma_update(None, "journal_mode", "wal")
            .expect("wal");
        writer
            .pragma_update(None, "wal_autocheckpoint", 4 * RESTART)
            .expect("backstop");
        writer
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB); INSERT INTO t VALUES (1, x'')",
            )
            .expect("table");
        let file = DatabaseFile::open(&path).expect("database file");
        let checkpointer =
            Checkpointer::start_with(&path, file, Duration::ZERO, RESTART).expect("start");
        // Rewriting one 256 KiB value (with other bytes each time: SQLite
        // leaves equal content alone) puts about 64 pages in the WAL per
        // commit, while the database itself stays small.
        let commits = 3 * RESTART as usize / 64;
        let mut longest = 0;
        for commit in 0..commits {
            let value = vec![commit as u8; 64 * PAGE];
            writer
                .execute("UPDATE t SET b = ?1 WHERE id = 1", [&value])
                .expect("commit");
            checkpointer.committed();
            if checkpointer.restart_due() {
                checkpoint(&writer).expect("checkpoint");
            }
            longest = longest.max(wal_pages(&path));
            // The relay's commits are paced by their syncs (a millisecond or
            // more on a disk); in a temporary directory they cost nothing, and
            // a loop of free commits on a loaded machine could outrun a
            // checkpointer thread that is not scheduled at all. Pace them as
            // a disk would.
            std::thread::sleep(Duration::from_millis(2));
        }
        checkpointer.stop();
        assert!(
            longest < 2 * RESTART as u64,
            "{commits} commits of 64 pages grew the WAL to {longest} pages"
        );
    }
}

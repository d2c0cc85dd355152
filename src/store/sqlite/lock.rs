//! SQLite is single-instance: a process that serves, archives or migrates a
//! database file holds an exclusive advisory lock on `<file>.lock` beside it for
//! as long as it runs. A second process on the same file therefore refuses to
//! start instead of resuming the same workflows twice. The kernel drops the lock
//! when its holder dies, even by SIGKILL, so a leftover lock file never blocks a
//! restart (the file itself stays; only the lock on it counts).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock, held until dropped (normally: until the process exits).
#[derive(Debug)]
pub struct DbLock {
    _file: File,
    pub path: PathBuf,
}

/// Why the lock could not be had.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it: the database is in use.
    Busy(String),
    /// The lock file could not be created or locked.
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy(m) | LockError::Io(m) => f.write_str(m),
        }
    }
}

/// `<db>.lock`: beside the database, so it names the same file whatever the
/// working directory of the process that locks it.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes the exclusive lock for `db` without waiting.
pub fn acquire(db: &Path) -> Result<DbLock, LockError> {
    let shown = db.display();
    let path = lock_path(db);
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            LockError::Io(format!(
                "storage.sqlite_path '{shown}': cannot create directory '{}': {e}",
                dir.display()
            ))
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            LockError::Io(format!(
                "storage.sqlite_path '{shown}': cannot open lock file '{}': {e}",
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(DbLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy(format!(
            "storage.sqlite_path '{shown}' is in use by another process (it holds '{}'); \
             SQLite serves one instance only: stop that process, or set postgres.url to run several",
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(LockError::Io(format!(
            "storage.sqlite_path '{shown}': cannot lock '{}': {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub").join("o.db");
        let first = acquire(&db).unwrap();
        assert_eq!(first.path, dir.path().join("sub").join("o.db.lock"));
        // flock locks belong to the open file, so a second open in this process
        // conflicts just as another process would.
        match acquire(&db) {
            Err(LockError::Busy(m)) => {
                assert!(m.starts_with(&format!("storage.sqlite_path '{}'", db.display())));
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(acquire(&db).is_ok());
        // Another database in the same directory is independent.
        let _a = acquire(&dir.path().join("a.db")).unwrap();
        let _b = acquire(&dir.path().join("b.db")).unwrap();
    }
}

//! The index's directory: tantivy's memory-mapped directory behind a thin wrapper that notices
//! write failures (a full disk, an unwritable directory) so a dead writer can be told apart
//! from a bug, and that tests can switch to fail writes the way a full disk does.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::directory::error::{
    DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};

/// What kind of storage failure stopped the index from being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// The disk or a quota is full (ENOSPC, EDQUOT): space must be freed.
    NoSpace,
    /// The directory cannot be written (EIO, EACCES, EROFS, …).
    Unavailable,
}

impl StorageFault {
    /// Returns the fault an I/O error stands for, if any (some errors are not storage's).
    pub fn of(e: &io::Error) -> Option<Self> {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        match (e.raw_os_error(), e.kind()) {
            (Some(ENOSPC | EDQUOT), _)
            | (_, io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) => {
                Some(StorageFault::NoSpace)
            }
            (Some(_), _)
            | (
                _,
                io::ErrorKind::PermissionDenied
                | io::ErrorKind::ReadOnlyFilesystem
                | io::ErrorKind::NotFound,
            ) => Some(StorageFault::Unavailable),
            _ => None,
        }
    }

    /// A short reason, fit for a health report (no paths, no internals).
    pub fn reason(self) -> &'static str {
        match self {
            StorageFault::NoSpace => "no space left on the device",
            StorageFault::Unavailable => "storage cannot be written",
        }
    }

    fn error(self) -> io::Error {
        match self {
            StorageFault::NoSpace => io::Error::from_raw_os_error(28),
            StorageFault::Unavailable => io::Error::from_raw_os_error(5),
        }
    }
}

/// Shared between an index's directory and its owner: the write fault last seen, and a switch
/// that makes every write fail as a full disk (or a failing device) would, for tests.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<Faults>);

#[derive(Debug, Default)]
struct Faults {
    /// 0: writes go through; 1: they fail with ENOSPC; 2: with EIO.
    inject: AtomicU8,
    seen: Mutex<Option<StorageFault>>,
}

impl FaultSwitch {
    /// Makes every later write to the index fail with `fault` (`None`: writes work again).
    /// A test seam: the failure is the one the file system would return.
    pub fn fail_writes(&self, fault: Option<StorageFault>) {
        let v = match fault {
            None => 0,
            Some(StorageFault::NoSpace) => 1,
            Some(StorageFault::Unavailable) => 2,
        };
        self.0.inject.store(v, Ordering::SeqCst);
    }

    fn injected(&self) -> Option<StorageFault> {
        match self.0.inject.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(StorageFault::NoSpace),
            _ => Some(StorageFault::Unavailable),
        }
    }

    /// Fails as the switch says, before a write reaches the file system.
    fn check(&self) -> io::Result<()> {
        match self.injected() {
            None => Ok(()),
            Some(f) => {
                self.note(f);
                Err(f.error())
            }
        }
    }

    fn observe<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r
            && let Some(f) = StorageFault::of(e)
        {
            self.note(f);
        }
        r
    }

    fn note(&self, f: StorageFault) {
        *self.0.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Returns (and forgets) the write fault seen since the last call.
    pub(crate) fn take_seen(&self) -> Option<StorageFault> {
        self.0.seen.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// tantivy's `MmapDirectory`, with every write checked by a `FaultSwitch`.
#[derive(Debug, Clone)]
pub(crate) struct GuardedDirectory {
    inner: MmapDirectory,
    faults: FaultSwitch,
}

impl GuardedDirectory {
    pub(crate) fn open(path: &Path, faults: FaultSwitch) -> Result<Self, OpenDirectoryError> {
        Ok(Self {
            inner: MmapDirectory::open(path)?,
            faults,
        })
    }
}

impl Directory for GuardedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let wrap = |e: io::Error| OpenWriteError::wrap_io_error(e, PathBuf::from(path));
        self.faults.check().map_err(wrap)?;
        let inner = match self.inner.open_write(path) {
            Ok(w) => w,
            Err(OpenWriteError::IoError { io_error, filepath }) => {
                if let Some(f) = StorageFault::of(&io_error) {
                    self.faults.note(f);
                }
                return Err(OpenWriteError::IoError { io_error, filepath });
            }
            Err(e) => return Err(e),
        };
        Ok(BufWriter::new(Box::new(GuardedWrite {
            inner,
            faults: self.faults.clone(),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.faults.check()?;
        self.faults.observe(self.inner.atomic_write(path, data))
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.faults.observe(self.inner.sync_directory())
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

/// A file being written, failing as the switch says.
struct GuardedWrite {
    inner: WritePtr,
    faults: FaultSwitch,
}

impl Write for GuardedWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.faults.check()?;
        self.faults.observe(self.inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.faults.check()?;
        self.faults.observe(self.inner.flush())
    }
}

impl TerminatingWrite for GuardedWrite {
    fn terminate_ref(&mut self, token: AntiCallToken) -> io::Result<()> {
        self.faults.check()?;
        let r = self.inner.terminate_ref(token);
        self.faults.observe(r)
    }
}

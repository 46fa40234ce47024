// A shim over SQLite's unix VFS whose xShm* methods keep the WAL index in
// the heap, shared by the connections of this process (see the header).
// The lock rules are those of os_unix.c's unixShmLock: never blocking, a
// slot held exclusively by one connection or shared by any number.
#include "server/storage/heap_shm_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/base/durable.h"

namespace distill {
namespace {

// os_unix.c's "dead man switch" byte of the -shm file: SQLite's own VFS
// must lock it to use the database in WAL mode.
constexpr off_t kDeadManSwitch = 128;

struct ShmFile;

// The WAL index of one database file, shared by its connections.
struct ShmNode {
  int fd = -1;  // The -shm file, only for its lock.
  int refs = 0;
  std::vector<std::unique_ptr<char[]>> regions;
  int shared[SQLITE_SHM_NLOCK] = {};
  const ShmFile* exclusive[SQLITE_SHM_NLOCK] = {};
};

// An open file: SQLite's sqlite3_file header, our state, then the unix
// VFS's own file object (sizeof is a multiple of 8: it stays aligned).
struct ShmFile {
  sqlite3_file base;
  const char* name;  // SQLite keeps it valid until xClose.
  ShmNode* node;
  uint8_t shared_mask;
  uint8_t exclusive_mask;
  // The last write was a WAL's 32-byte header at offset 0: SQLite is
  // starting the log anew and syncs the header next.
  bool wrote_wal_header;

  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

absl::Mutex g_mu;
std::map<std::string, ShmNode*>& Nodes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* nodes = new std::map<std::string, ShmNode*>;
  return *nodes;
}

sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;
sqlite3_io_methods g_methods;

ShmFile* Cast(sqlite3_file* f) { return reinterpret_cast<ShmFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Cast(f)->real(); }
const sqlite3_io_methods* RealMethods(sqlite3_file* f) {
  return Real(f)->pMethods;
}

// Drops every lock `f` holds and its reference to the node.
void Detach(ShmFile* f, bool delete_file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  ShmNode* node = f->node;
  if (node == nullptr) return;
  for (int i = 0; i < SQLITE_SHM_NLOCK; ++i) {
    if (f->shared_mask & (1 << i)) --node->shared[i];
    if (node->exclusive[i] == f) node->exclusive[i] = nullptr;
  }
  f->shared_mask = f->exclusive_mask = 0;
  f->node = nullptr;
  if (--node->refs > 0) return;
  const std::string shm_path = absl::StrCat(f->name, "-shm");
  Nodes().erase(f->name);
  if (node->fd >= 0) ::close(node->fd);  // Releases the lock.
  if (delete_file) ::unlink(shm_path.c_str());
  delete node;
}

int ShmMap(sqlite3_file* file, int region, int size, int extend,
           void volatile** out) {
  ShmFile* f = Cast(file);
  absl::MutexLock lock(&g_mu);
  if (f->node == nullptr) {
    ShmNode*& node = Nodes()[f->name];
    if (node == nullptr) {
      // Keeps SQLite's own VFS (another process) off this database.
      const std::string shm_path = absl::StrCat(f->name, "-shm");
      const int fd =
          ::open(shm_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      struct flock lk = {};
      lk.l_type = F_WRLCK;
      lk.l_whence = SEEK_SET;
      lk.l_start = kDeadManSwitch;
      lk.l_len = 1;
      if (fd < 0 || ::fcntl(fd, F_SETLK, &lk) != 0) {
        if (fd >= 0) ::close(fd);
        Nodes().erase(f->name);
        return fd < 0 ? SQLITE_IOERR_SHMOPEN : SQLITE_BUSY;
      }
      node = new ShmNode;
      node->fd = fd;
    }
    ++node->refs;
    f->node = node;
  }
  ShmNode* node = f->node;
  while (int(node->regions.size()) <= region) {
    if (!extend) {
      *out = nullptr;
      return SQLITE_OK;
    }
    node->regions.push_back(std::make_unique<char[]>(size));  // Zeroed.
  }
  *out = node->regions[region].get();
  return SQLITE_OK;
}

int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  ShmFile* f = Cast(file);
  absl::MutexLock lock(&g_mu);
  ShmNode* node = f->node;
  if (node == nullptr || offset < 0 || n < 1 || offset + n > SQLITE_SHM_NLOCK) {
    return SQLITE_IOERR_SHMLOCK;
  }
  if (flags & SQLITE_SHM_UNLOCK) {
    for (int i = offset; i < offset + n; ++i) {
      if (f->shared_mask & (1 << i)) {
        --node->shared[i];
        f->shared_mask &= ~(1 << i);
      }
      if (node->exclusive[i] == f) {
        node->exclusive[i] = nullptr;
        f->exclusive_mask &= ~(1 << i);
      }
    }
    return SQLITE_OK;
  }
  if (flags & SQLITE_SHM_SHARED) {
    for (int i = offset; i < offset + n; ++i) {
      if (node->exclusive[i] != nullptr && node->exclusive[i] != f)
        return SQLITE_BUSY;
    }
    for (int i = offset; i < offset + n; ++i) {
      if (f->shared_mask & (1 << i)) continue;
      ++node->shared[i];
      f->shared_mask |= 1 << i;
    }
    return SQLITE_OK;
  }
  for (int i = offset; i < offset + n; ++i) {
    const int own = (f->shared_mask >> i) & 1;
    if ((node->exclusive[i] != nullptr && node->exclusive[i] != f) ||
        node->shared[i] - own > 0) {
      return SQLITE_BUSY;
    }
  }
  for (int i = offset; i < offset + n; ++i) {
    node->exclusive[i] = f;
    f->exclusive_mask |= 1 << i;
  }
  return SQLITE_OK;
}

void ShmBarrier(sqlite3_file*) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  absl::MutexLock lock(&g_mu);
  Detach(Cast(file), delete_flag != 0);
  return SQLITE_OK;
}

int Close(sqlite3_file* file) {
  {
    absl::MutexLock lock(&g_mu);
    Detach(Cast(file), false);
  }
  return RealMethods(file)->xClose(Real(file));
}
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 offset) {
  return RealMethods(f)->xRead(Real(f), buf, n, offset);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 offset) {
  Cast(f)->wrote_wal_header = offset == 0 && n == 32;
  return RealMethods(f)->xWrite(Real(f), buf, n, offset);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  return RealMethods(f)->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  // The one sync SQLite makes in a commit without synchronous=FULL: the
  // new header of a log it starts anew after a checkpoint copied all of it,
  // before any frame follows it (its ticket ff5be73dee). Counted apart.
  if (std::exchange(Cast(f)->wrote_wal_header, false)) {
    NoteWalHeaderSync();
  } else {
    CheckSyncAllowed("an SQLite file");
  }
  return RealMethods(f)->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return RealMethods(f)->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) {
  return RealMethods(f)->xLock(Real(f), level);
}
int Unlock(sqlite3_file* f, int level) {
  return RealMethods(f)->xUnlock(Real(f), level);
}
int CheckReservedLock(sqlite3_file* f, int* out) {
  return RealMethods(f)->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return RealMethods(f)->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return RealMethods(f)->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return RealMethods(f)->xDeviceCharacteristics(Real(f));
}
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int n, void** out) {
  return RealMethods(f)->xFetch(Real(f), offset, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return RealMethods(f)->xUnfetch(Real(f), offset, p);
}

int Open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags,
         int* out_flags) {
  ShmFile* f = Cast(file);
  f->base.pMethods = nullptr;
  f->name = name;
  f->node = nullptr;
  f->shared_mask = f->exclusive_mask = 0;
  f->wrote_wal_header = false;
  const int rc = g_real->xOpen(g_real, name, f->real(), flags, out_flags);
  if (f->real()->pMethods != nullptr) f->base.pMethods = &g_methods;
  return rc;
}

absl::Status g_registered;

void Register() {
  g_real = sqlite3_vfs_find(nullptr);
  if (g_real == nullptr || g_real->iVersion < 2) {
    g_registered = absl::InternalError("SQLite has no default VFS");
    return;
  }
  g_vfs = *g_real;
  g_vfs.zName = kHeapShmVfs;
  g_vfs.szOsFile = int(sizeof(ShmFile)) + g_real->szOsFile;
  g_vfs.xOpen = Open;
  g_vfs.pNext = nullptr;
  g_methods = {};
  g_methods.iVersion = 3;
  g_methods.xClose = Close;
  g_methods.xRead = Read;
  g_methods.xWrite = Write;
  g_methods.xTruncate = Truncate;
  g_methods.xSync = Sync;
  g_methods.xFileSize = FileSize;
  g_methods.xLock = Lock;
  g_methods.xUnlock = Unlock;
  g_methods.xCheckReservedLock = CheckReservedLock;
  g_methods.xFileControl = FileControl;
  g_methods.xSectorSize = SectorSize;
  g_methods.xDeviceCharacteristics = DeviceCharacteristics;
  g_methods.xShmMap = ShmMap;
  g_methods.xShmLock = ShmLock;
  g_methods.xShmBarrier = ShmBarrier;
  g_methods.xShmUnmap = ShmUnmap;
  g_methods.xFetch = Fetch;
  g_methods.xUnfetch = Unfetch;
  if (const int rc = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0);
      rc != SQLITE_OK) {
    g_registered = absl::InternalError(
        absl::StrCat("cannot register the SQLite VFS ", kHeapShmVfs, ": ",
                     sqlite3_errstr(rc)));
  }
}

}  // namespace

absl::Status RegisterHeapShmVfs() {
  static absl::once_flag once;
  absl::call_once(once, Register);
  return g_registered;
}

}  // namespace distill

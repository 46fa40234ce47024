#ifndef DISTILL_SERVER_STORAGE_HEAP_SHM_VFS_H_
#define DISTILL_SERVER_STORAGE_HEAP_SHM_VFS_H_

#include "absl/status/status.h"

namespace distill {

// The name of an SQLite VFS ("distill-heap-shm") that is the default unix
// VFS with the WAL index ("shared memory") kept in this process's heap
// instead of a memory-mapped DATABASE-shm file. Several connections of one
// process then read while one writes (WAL), and no page of the WAL index
// can fault with SIGBUS when the disk fills up or turns read-only under a
// mapped file. Only one process may use a database through it: a second
// one (another coordinator, the sqlite3 shell) is refused with
// SQLITE_BUSY while this process has it open, because the VFS holds a
// write lock on the -shm file's "dead man switch" byte that SQLite's own
// VFS must lock to open the database in WAL mode.
//
// Registered once (thread-safe); returns the name to pass to
// sqlite3_open_v2.
absl::Status RegisterHeapShmVfs();
inline constexpr char kHeapShmVfs[] = "distill-heap-shm";

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_HEAP_SHM_VFS_H_

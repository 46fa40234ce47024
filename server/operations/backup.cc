#include "server/operations/backup.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/byte_sizes.h"
#include "common/log.h"
#include "common/sha256.h"
#include "server/base/durable.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

constexpr char kDatabase[] = "distill.db";
constexpr char kManifest[] = "MANIFEST";
constexpr char kFiles[] = "files";
constexpr char kPartial[] = ".partial-";

absl::Status Fsync(const std::string& path) { return FsyncPath(path); }

// Copies `from` to the new file `to` through `to`.tmp, hashing the bytes:
// DATA_LOSS when they are not `sha256`. `to` appears whole or not at all.
// `paced`: at kBackupBytesPerSecond (a backup beside a serving
// coordinator; a restore goes at full speed).
absl::Status CopyChecked(const std::string& from, const std::string& to,
                         const std::string& sha256, bool paced) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return errno == ENOENT ? absl::DataLossError(absl::StrCat(
                                 "run file ", sha256, " is missing: ", from))
                           : IoError("cannot open " + from, errno);
  }
  const std::string temp = to + ".tmp";
  const int out =
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    const int error = errno;
    ::close(in);
    return IoError("cannot create " + temp, error);
  }
  Sha256 hash;
  absl::Status status;
  char buffer[1 << 16];
  const absl::Time start = absl::Now();
  int64_t written = 0;
  while (status.ok()) {
    const ssize_t n = ::read(in, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = IoError("cannot read " + from, errno);
    if (n <= 0) break;
    hash.Update(std::string_view(buffer, size_t(n)));
    if (::write(out, buffer, size_t(n)) != n) {
      status = IoError("cannot write " + temp, errno);
    }
    written += n;
    if (paced && written % (int64_t{4} << 20) < n) {
      PaceBackupWrites(out, start, written);
    }
  }
  if (status.ok() && ::fsync(out) != 0) {
    status = IoError("cannot fsync " + temp, errno);
  }
  ::close(in);
  ::close(out);
  if (status.ok() && hash.HexDigest() != sha256) {
    status = absl::DataLossError(absl::StrCat(
        "run file ", from, " is damaged: its bytes do not hash to ", sha256));
  }
  std::error_code ec;
  if (status.ok()) fs::rename(temp, to, ec);
  if (status.ok() && ec) status = IoError("cannot rename " + temp, ec.value());
  if (!status.ok()) fs::remove(temp, ec);
  return status;
}

struct ManifestEntry {
  std::string sha256;
  int64_t size = 0;
};

// One entry a digest: a file two runs share is copied once.
std::vector<ManifestEntry> ManifestOf(
    const std::vector<RunFileRecord>& records) {
  std::vector<ManifestEntry> entries;
  std::set<std::string> seen;
  for (const RunFileRecord& record : records) {
    if (seen.insert(record.sha256).second) {
      entries.push_back({record.sha256, record.size});
    }
  }
  return entries;
}

absl::Status WriteManifest(const std::string& path,
                           const std::vector<ManifestEntry>& entries) {
  {
    std::ofstream out(path, std::ios::trunc);
    for (const ManifestEntry& e : entries) {
      out << e.sha256 << ' ' << e.size << '\n';
    }
    out.flush();
    if (!out) return IoError("cannot write " + path, errno);
  }
  return Fsync(path);
}

absl::StatusOr<std::vector<ManifestEntry>> ReadManifest(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": no such manifest"));
  }
  std::vector<ManifestEntry> entries;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ManifestEntry entry;
    if (parts.size() != 2 || !IsSha256Hex(parts[0]) ||
        !absl::SimpleAtoi(parts[1], &entry.size)) {
      return absl::DataLossError(
          absl::StrCat(path, ":", number, ": not \"SHA256 SIZE\""));
    }
    entry.sha256 = parts[0];
    entries.push_back(std::move(entry));
  }
  return entries;
}

// The files of `entries` that `pool` lacks.
std::vector<ManifestEntry> NotInPool(const std::vector<ManifestEntry>& entries,
                                     const std::string& pool) {
  std::vector<ManifestEntry> missing;
  for (const ManifestEntry& e : entries) {
    std::error_code ec;
    if (!fs::exists(pool + "/" + e.sha256, ec)) missing.push_back(e);
  }
  return missing;
}

// Copies `entries` into `pool`, each path it made into `copied`.
absl::Status CopyNewFiles(const std::vector<ManifestEntry>& entries,
                          const std::string& run_files_dir,
                          const std::string& pool, BackupResult& result,
                          std::vector<std::string>& copied) {
  for (const ManifestEntry& e : entries) {
    const std::string to = pool + "/" + e.sha256;
    if (absl::Status s =
            CopyChecked(run_files_dir + "/" + e.sha256, to, e.sha256,
                        /*paced=*/true);
        !s.ok()) {
      return s;
    }
    copied.push_back(to);
    ++result.files_copied;
    result.bytes_copied += e.size;
  }
  return Fsync(pool);
}

// OK when `needed` bytes fit on the disk of `dir` and leave
// `space.keep_free` there; RESOURCE_EXHAUSTED naming the sizes otherwise.
absl::Status CheckSpace(const BackupSpace& space, const std::string& dir,
                        int64_t needed, const std::string& what) {
  if (!space.free_bytes) return absl::OkStatus();
  absl::StatusOr<int64_t> free = space.free_bytes(dir);
  if (!free.ok()) return free.status();
  if (needed + space.keep_free <= *free) return absl::OkStatus();
  std::string why = absl::StrCat("no room for the backup in ", dir, ": ", what,
                                 " needs ", HumanBytes(needed),
                                 ", the disk has ", HumanBytes(*free), " free");
  if (space.keep_free > 0) {
    absl::StrAppend(&why, " and keeps ", HumanBytes(space.keep_free),
                    " for the coordinator (--min_free_disk: the backups share "
                    "its disk)");
  }
  return absl::ResourceExhaustedError(why);
}

}  // namespace

absl::StatusOr<BackupResult> TakeBackup(Store& reader, RunFileStore& files,
                                        const std::string& run_files_dir,
                                        const std::string& backup_dir,
                                        absl::Time now,
                                        const BackupSpace& space) {
  const absl::Time start = absl::Now();
  std::string name =
      absl::FormatTime("%Y-%m-%dT%H-%M-%E3SZ", now, absl::UTCTimeZone());
  std::error_code ec;
  // Two in one millisecond (a clock set back): the second gets a suffix.
  for (int n = 2; fs::exists(backup_dir + "/" + name, ec); ++n) {
    name = absl::StrCat(name.substr(0, name.find('Z') + 1), "-", n);
  }
  const std::string partial = backup_dir + "/" + kPartial + name;
  const std::string pool = backup_dir + "/" + kFiles;
  fs::create_directories(pool, ec);
  if (!ec) fs::create_directory(partial, ec);
  if (ec) return IoError("cannot create " + partial, ec.value());
  BackupResult result;
  result.snapshot = backup_dir + "/" + name;
  // The database first: the files it names exist (run files are written
  // before their records, and their removal waits for the pin's end). Each
  // step only where its bytes fit: a backup never fills the disk.
  const std::shared_ptr<void> pin = files.Pin();
  absl::Status status =
      CheckSpace(space, backup_dir, space.database_bytes, "the database");
  absl::StatusOr<std::vector<RunFileRecord>> records =
      status.ok() ? reader.SnapshotTo(partial + "/" + kDatabase)
                  : absl::StatusOr<std::vector<RunFileRecord>>(status);
  status = records.status();
  std::vector<ManifestEntry> entries;
  std::vector<std::string> copied;
  if (status.ok()) {
    entries = ManifestOf(*records);
    result.files = int64_t(entries.size());
    const std::vector<ManifestEntry> missing = NotInPool(entries, pool);
    int64_t bytes = 0;
    for (const ManifestEntry& e : missing) bytes += e.size;
    status = CheckSpace(space, backup_dir, bytes,
                        absl::StrCat(missing.size(), " new run files"));
    if (status.ok())
      status = CopyNewFiles(missing, run_files_dir, pool, result, copied);
  }
  if (status.ok()) status = WriteManifest(partial + "/" + kManifest, entries);
  if (status.ok()) status = Fsync(partial);
  if (status.ok()) {
    fs::rename(partial, result.snapshot, ec);
    if (ec) status = IoError("cannot rename " + partial, ec.value());
  }
  if (status.ok()) status = Fsync(backup_dir);
  if (!status.ok()) {
    // What it copied no snapshot names: a failing backup must not fill the
    // disk a little more each time it is tried.
    fs::remove_all(partial, ec);
    for (const std::string& path : copied) fs::remove(path, ec);
    return status;
  }
  result.database_bytes =
      int64_t(fs::file_size(result.snapshot + "/" + kDatabase, ec));
  result.took = absl::Now() - start;
  return result;
}

std::vector<std::string> ListSnapshots(const std::string& backup_dir) {
  std::vector<std::string> snapshots;
  std::error_code ec;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(backup_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == kFiles || name.starts_with(".")) continue;
    if (fs::exists(entry.path() / kManifest, ec)) {
      snapshots.push_back(entry.path().string());
    }
  }
  std::sort(snapshots.begin(), snapshots.end());  // Names are UTC times.
  return snapshots;
}

absl::Status PruneBackups(const std::string& backup_dir, int keep) {
  if (keep < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("keep ", keep, ": at least one backup is kept"));
  }
  std::vector<std::string> snapshots = ListSnapshots(backup_dir);
  std::error_code ec;
  const size_t drop =
      snapshots.size() > size_t(keep) ? snapshots.size() - size_t(keep) : 0;
  for (size_t i = 0; i < drop; ++i) fs::remove_all(snapshots[i], ec);
  std::set<std::string> named;
  for (size_t i = drop; i < snapshots.size(); ++i) {
    absl::StatusOr<std::vector<ManifestEntry>> entries =
        ReadManifest(snapshots[i] + "/" + kManifest);
    if (!entries.ok()) return entries.status();  // Delete nothing unsure.
    for (const ManifestEntry& e : *entries) named.insert(e.sha256);
  }
  for (const fs::directory_entry& entry :
       fs::directory_iterator(backup_dir + "/" + kFiles, ec)) {
    if (!named.contains(entry.path().filename().string())) {
      fs::remove(entry.path(), ec);
    }
  }
  for (const fs::directory_entry& entry :
       fs::directory_iterator(backup_dir, ec)) {
    if (entry.path().filename().string().starts_with(kPartial)) {
      fs::remove_all(entry.path(), ec);
    }
  }
  return absl::OkStatus();
}

namespace {

// `data_dir`, empty, with its run-files directory; FAILED_PRECONDITION when
// it holds anything already.
absl::Status PrepareDataDir(const std::string& data_dir) {
  std::error_code ec;
  if (fs::exists(data_dir, ec) && !fs::is_empty(data_dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot restore into ", data_dir,
                     ": it is not empty (restore into a new data directory)"));
  }
  fs::create_directories(data_dir + "/" + std::string(kRunFilesDir), ec);
  if (ec) return IoError("cannot create " + data_dir, ec.value());
  return absl::OkStatus();
}

// Queues again the runs that were leased when the snapshot was taken.
absl::StatusOr<int64_t> RequeueLeased(Store& store, const std::string& from) {
  absl::StatusOr<std::vector<v1::Run>> running = store.ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  for (v1::Run& run : *running) {
    SetQueuedAgain(run, absl::StrCat("queued again: restored from ", from,
                                     "; attempt ", run.attempt(), " on worker ",
                                     run.worker_id(), " was fenced out"));
    if (absl::Status s = store.UpdateRun(run); !s.ok()) return s;
  }
  return int64_t(running->size());
}

absl::StatusOr<RestoreResult> RestoreInto(const std::string& snapshot,
                                          const std::string& data_dir) {
  absl::StatusOr<std::vector<ManifestEntry>> entries =
      ReadManifest(snapshot + "/" + kManifest);
  if (!entries.ok()) return entries.status();
  const std::string pool = (fs::path(snapshot).parent_path() / kFiles).string();
  RestoreResult result;
  for (const ManifestEntry& e : *entries) {
    if (absl::Status s = CopyChecked(
            pool + "/" + e.sha256,
            data_dir + "/" + std::string(kRunFilesDir) + "/" + e.sha256,
            e.sha256, /*paced=*/false);
        !s.ok()) {
      return s;
    }
    ++result.files;
  }
  const std::string database = data_dir + "/" + kDatabase;
  std::error_code ec;
  fs::copy_file(snapshot + "/" + kDatabase, database, ec);
  if (ec) return IoError("cannot copy the database to " + database, ec.value());
  // On disk before SQLite writes beside it (in WAL mode its commits sync
  // the log, not the main file a copy left in the page cache).
  if (absl::Status s = Fsync(database); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::OpenSqlite(database);
  if (!store.ok()) return store.status();
  if (absl::Status s = (*store)->CheckIntegrity(); !s.ok()) return s;
  // Every file the database names came with the snapshot.
  absl::StatusOr<std::vector<RunFileRecord>> records = (*store)->ListRunFiles();
  if (!records.ok()) return records.status();
  for (const RunFileRecord& record : *records) {
    if (!fs::exists(
            data_dir + "/" + std::string(kRunFilesDir) + "/" + record.sha256,
            ec)) {
      return absl::DataLossError(
          absl::StrCat("run ", record.run_id, "'s file \"", record.name, "\" (",
                       record.sha256, ") is not in ", snapshot));
    }
  }
  absl::StatusOr<int64_t> requeued = RequeueLeased(**store, snapshot);
  if (!requeued.ok()) return requeued.status();
  result.requeued = *requeued;
  store->reset();
  // The names too: the run files' and the database's directory entries.
  for (const std::string& dir :
       {data_dir + "/" + std::string(kRunFilesDir), data_dir}) {
    if (absl::Status s = Fsync(dir); !s.ok()) return s;
  }
  return result;
}

}  // namespace

absl::StatusOr<RestoreResult> RestoreBackup(const std::string& given,
                                            const std::string& data_dir) {
  // "BACKUP_DIR/2026-12-06T10-00-00.000Z/" (a shell's completion) names the
  // same snapshot: its pool is beside it, not inside.
  fs::path path = fs::path(given).lexically_normal();
  if (!path.has_filename() && path.has_parent_path()) path = path.parent_path();
  const std::string snapshot = path.string();
  if (absl::Status s = PrepareDataDir(data_dir); !s.ok()) return s;
  absl::StatusOr<RestoreResult> result = RestoreInto(snapshot, data_dir);
  if (!result.ok()) {
    // Nothing half-restored to start from.
    std::error_code ec;
    for (const fs::directory_entry& entry :
         fs::directory_iterator(data_dir, ec)) {
      fs::remove_all(entry.path(), ec);
    }
  }
  return result;
}

}  // namespace distill

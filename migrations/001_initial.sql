-- Runs, sweeps, workers, metrics and checkpoints.
CREATE TABLE sweeps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  spec BLOB NOT NULL,
  teacher_run_id INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL
);
CREATE INDEX sweeps_by_name ON sweeps(name);

CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sweep_id INTEGER NOT NULL DEFAULT 0,
  member TEXT NOT NULL DEFAULT '',
  kind INTEGER NOT NULL,
  spec BLOB NOT NULL,
  status INTEGER NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  max_restarts INTEGER NOT NULL DEFAULT 2,
  worker_id TEXT NOT NULL DEFAULT '',
  lease_expires_ms INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  teacher_run_id INTEGER NOT NULL DEFAULT 0,
  checkpoint_sha256 TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_sweep ON runs(sweep_id);
CREATE INDEX runs_by_status ON runs(status);
CREATE INDEX runs_by_teacher ON runs(teacher_run_id);

CREATE TABLE run_results (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  key TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (run_id, key)
);

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  device TEXT NOT NULL,
  threads INTEGER NOT NULL,
  libtorch_version TEXT NOT NULL,
  blas TEXT NOT NULL,
  registered_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL
);

CREATE TABLE metrics (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  attempt INTEGER NOT NULL,
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  key TEXT NOT NULL,
  value REAL NOT NULL,
  time_ms INTEGER NOT NULL
);
CREATE INDEX metrics_by_run ON metrics(run_id, id);

CREATE TABLE checkpoints (
  sha256 TEXT NOT NULL,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  attempt INTEGER NOT NULL,
  size INTEGER NOT NULL,
  path TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (sha256, run_id)
);

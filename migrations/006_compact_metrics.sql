-- Compact metric history (issue 10): key names interned once, each point
-- in a table clustered by (run, key, sequence) without a rowid, and a
-- per-run, per-key summary that finds a key's points (and how many there
-- are) without a scan. `sequence` is the point's place in its run's
-- history (a watcher's cursor); existing points keep their old id as it.
CREATE TABLE metric_keys (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE
);
CREATE TABLE metric_points (
  run_id INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  value REAL NOT NULL,
  time_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, key_id, sequence)
) WITHOUT ROWID;
CREATE TABLE run_metric_keys (
  run_id INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  points INTEGER NOT NULL,
  first_sequence INTEGER NOT NULL,
  last_sequence INTEGER NOT NULL,
  PRIMARY KEY (run_id, key_id)
) WITHOUT ROWID;
INSERT INTO metric_keys(key) SELECT DISTINCT key FROM metrics ORDER BY key;
INSERT INTO metric_points
  SELECT m.run_id, k.id, m.id, m.attempt, m.step, m.epoch, m.value, m.time_ms
  FROM metrics m JOIN metric_keys k ON k.key = m.key
  ORDER BY m.run_id, k.id, m.id;
INSERT INTO run_metric_keys
  SELECT run_id, key_id, COUNT(*), MIN(sequence), MAX(sequence)
  FROM metric_points GROUP BY run_id, key_id;
DROP TABLE metrics;
-- Listings page by id within a filter.
CREATE INDEX runs_by_status_id ON runs(status, id);
CREATE INDEX runs_by_sweep_id ON runs(sweep_id, id);
DROP INDEX runs_by_status;
DROP INDEX runs_by_sweep;
CREATE INDEX runs_by_worker ON runs(worker_id) WHERE status = 3;

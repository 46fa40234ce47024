-- Issue 31: placement. What each worker offers (its labels "k=v" joined by
-- newlines, sorted; its device's memory; its device's name; its cores),
-- and each run's requirements as one key (common/placement.h), with the
-- queue's order per key, so that a worker finds the first run it may take
-- without reading the runs it may not.
ALTER TABLE workers ADD COLUMN labels TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN device_memory_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN accelerator TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN cpu_cores INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN requires_key TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_queue_by_requirement
  ON runs(requires_key, priority DESC, id) WHERE status = 2;
CREATE TABLE requirement_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;

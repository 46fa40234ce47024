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

-- Fair share. The queue by owner, requirement key and priority, and the
-- runs each owner has running, kept by triggers in the same transaction as
-- every change of a run (so a lease reads a few groups' heads, never the
-- queue); each owner's GPU time, decayed and in all; and what an admin set:
-- an owner's shares (1 when unset) and cap on running runs (NULL: the
-- coordinator's --max_running_per_owner; 0: none).
CREATE INDEX runs_queue_by_owner
  ON runs(owner, requires_key, priority, id) WHERE status = 2;
CREATE TABLE queue_groups (
  owner TEXT NOT NULL,
  requires_key TEXT NOT NULL,
  priority INTEGER NOT NULL,
  queued INTEGER NOT NULL,
  PRIMARY KEY (owner, requires_key, priority)
) WITHOUT ROWID;
CREATE TABLE owner_load (
  owner TEXT PRIMARY KEY,
  running INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE owner_usage (
  owner TEXT PRIMARY KEY,
  decayed_ms REAL NOT NULL DEFAULT 0,
  total_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE owner_policy (
  owner TEXT PRIMARY KEY,
  shares REAL NOT NULL DEFAULT 1,
  max_running INTEGER
) WITHOUT ROWID;
INSERT INTO queue_groups
  SELECT owner, requires_key, priority, COUNT(*) FROM runs WHERE status = 2
  GROUP BY owner, requires_key, priority;
INSERT INTO owner_load
  SELECT owner, COUNT(*) FROM runs WHERE status = 3 GROUP BY owner;

CREATE TRIGGER runs_enter_queue AFTER INSERT ON runs WHEN NEW.status = 2
BEGIN
  INSERT INTO queue_groups VALUES (NEW.owner, NEW.requires_key, NEW.priority, 1)
    ON CONFLICT DO UPDATE SET queued = queued + 1;
END;
CREATE TRIGGER runs_enter_running AFTER INSERT ON runs WHEN NEW.status = 3
BEGIN
  INSERT INTO owner_load VALUES (NEW.owner, 1)
    ON CONFLICT DO UPDATE SET running = running + 1;
END;
CREATE TRIGGER runs_leave AFTER DELETE ON runs
  WHEN OLD.status = 2 OR OLD.status = 3
BEGIN
  UPDATE queue_groups SET queued = queued - 1 WHERE OLD.status = 2
    AND owner = OLD.owner AND requires_key = OLD.requires_key
    AND priority = OLD.priority;
  DELETE FROM queue_groups WHERE queued <= 0 AND owner = OLD.owner
    AND requires_key = OLD.requires_key AND priority = OLD.priority;
  UPDATE owner_load SET running = running - 1
    WHERE OLD.status = 3 AND owner = OLD.owner;
END;
CREATE TRIGGER runs_move
  AFTER UPDATE OF status, owner, requires_key, priority ON runs
  WHEN OLD.status IN (2, 3) OR NEW.status IN (2, 3)
BEGIN
  UPDATE queue_groups SET queued = queued - 1 WHERE OLD.status = 2
    AND owner = OLD.owner AND requires_key = OLD.requires_key
    AND priority = OLD.priority;
  DELETE FROM queue_groups WHERE queued <= 0 AND owner = OLD.owner
    AND requires_key = OLD.requires_key AND priority = OLD.priority;
  INSERT INTO queue_groups
    SELECT NEW.owner, NEW.requires_key, NEW.priority, 1 WHERE NEW.status = 2
    ON CONFLICT DO UPDATE SET queued = queued + 1;
  UPDATE owner_load SET running = running - 1
    WHERE OLD.status = 3 AND owner = OLD.owner;
  INSERT INTO owner_load SELECT NEW.owner, 1 WHERE NEW.status = 3
    ON CONFLICT DO UPDATE SET running = running + 1;
END;

-- Preemption at a step: each time a run was asked to give its worker way,
-- for which run and why (its history in runs show).
CREATE TABLE preemptions (
  run_id INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  asked_ms INTEGER NOT NULL,
  worker_id TEXT NOT NULL,
  for_run_id INTEGER NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;

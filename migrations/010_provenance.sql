-- Issue 12: where and from what each run ran (Run.provenance), and the
-- build of each worker.
ALTER TABLE workers ADD COLUMN distill_version TEXT NOT NULL DEFAULT '';
CREATE TABLE run_provenance (
  run_id INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

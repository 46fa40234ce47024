-- Issue 24: runs.max_restarts was written and never read (the run's spec
-- holds it); a run file's path is relative to the data directory, so that
-- the directory, or a backup restored elsewhere, can move.
ALTER TABLE runs DROP COLUMN max_restarts;
UPDATE run_files SET path = 'run-files/' || sha256;

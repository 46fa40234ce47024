-- Issue 31: who submitted each run and sweep (the name of the token that
-- did); rows from before read 'unknown'. The listings filter on it.
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE sweeps ADD COLUMN owner TEXT NOT NULL DEFAULT 'unknown';
CREATE INDEX runs_owner ON runs(owner, id);

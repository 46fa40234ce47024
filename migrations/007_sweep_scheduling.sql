-- Issue 11: a sweep's priority and its limit on runs leased at once. Each
-- run carries its sweep's priority, so that the queue's order (priority,
-- then submission) is one partial index over the queued runs (status 2).
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sweeps ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_queue ON runs(priority DESC, id) WHERE status = 2;

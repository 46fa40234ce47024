-- Graceful drain: `distill workers drain` sets draining; a worker that
-- deregistered after its drain has stopped_ms > 0.
ALTER TABLE workers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN stopped_ms INTEGER NOT NULL DEFAULT 0;
-- Attempts handed back by a draining worker: not restarts.
ALTER TABLE runs ADD COLUMN releases INTEGER NOT NULL DEFAULT 0;

-- A run keeps named files besides its final checkpoint (artifacts such as
-- tsne.csv); each is content-addressed like a checkpoint.
ALTER TABLE checkpoints ADD COLUMN name TEXT NOT NULL DEFAULT 'checkpoint';
CREATE INDEX checkpoints_by_run ON checkpoints(run_id, name);

-- One word for one thing: the checkpoint is the model file; every file a
-- run uploads (the checkpoint, resume points, tsne.csv) is a run file.
ALTER TABLE checkpoints RENAME TO run_files;
DROP INDEX checkpoints_by_run;
CREATE INDEX run_files_by_run ON run_files(run_id, name);

-- Issue 12: runs found by any field of their spec in SQL. Each run's
-- scalar spec fields as (path, text) (common/spec_fields.h); the store
-- fills it for runs stored before this version when it opens. And the
-- indexes the listing's other filters and its sort by a result use.
CREATE TABLE run_fields (
  run_id INTEGER NOT NULL,
  path TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
CREATE INDEX run_fields_by_value ON run_fields(path, value, run_id);
CREATE INDEX runs_by_kind_id ON runs(kind, id);
CREATE INDEX runs_by_member ON runs(member);
CREATE INDEX runs_by_created ON runs(created_ms);
CREATE INDEX run_results_by_key ON run_results(key, value);

-- Issue 12: tags (key = value) and a note on runs (kind 1) and sweeps
-- (kind 2), found by `distill runs list --tag=KEY=VALUE --search=TEXT`.
CREATE TABLE tags (
  kind INTEGER NOT NULL,
  target_id INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (kind, target_id, key)
) WITHOUT ROWID;
CREATE INDEX tags_by_value ON tags(kind, key, value, target_id);
ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE sweeps ADD COLUMN note TEXT NOT NULL DEFAULT '';

-- Tokens with roles (distill.v1.Role). Only the SHA-256 of a secret is
-- kept; a revoked token keeps its row (revoked_ms > 0) for the record.
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  role INTEGER NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER NOT NULL DEFAULT 0
);
-- The token a worker registered with: only that token may act for the
-- worker's leases. 0 when the coordinator ran without tokens.
ALTER TABLE workers ADD COLUMN token_id INTEGER NOT NULL DEFAULT 0;

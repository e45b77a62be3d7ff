-- Web UI sessions: a signed-in browser holds a random token in an HttpOnly cookie; only the
-- token's SHA-256 is stored, so a copy of the database opens no session. Kept in the database
-- (not in a replica's memory) so every replica agrees, and sign-out revokes everywhere.
CREATE TABLE ui_sessions (
    token_sha256 TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions(expires_at);

-- Full-text search over prompt text (`q` on GET /api/public/traces). A contentless FTS5 index
-- keyed by the trace row's rowid (traces are upserted in place, so a row keeps its rowid),
-- kept up to date by triggers; the first 64 Ki characters of a prompt are indexed (as on
-- PostgreSQL, whose tsvector has a size limit).
CREATE VIRTUAL TABLE traces_fts USING fts5(prompt, content='', tokenize='unicode61 remove_diacritics 2');

CREATE TRIGGER traces_fts_insert AFTER INSERT ON traces BEGIN
    INSERT INTO traces_fts(rowid, prompt)
    VALUES (new.rowid, substr(COALESCE(json_extract(new.summary, '$.prompt'), ''), 1, 65536));
END;

CREATE TRIGGER traces_fts_delete AFTER DELETE ON traces BEGIN
    INSERT INTO traces_fts(traces_fts, rowid, prompt)
    VALUES ('delete', old.rowid, substr(COALESCE(json_extract(old.summary, '$.prompt'), ''), 1, 65536));
END;

CREATE TRIGGER traces_fts_update AFTER UPDATE OF summary ON traces
WHEN COALESCE(json_extract(old.summary, '$.prompt'), '') IS NOT COALESCE(json_extract(new.summary, '$.prompt'), '')
BEGIN
    INSERT INTO traces_fts(traces_fts, rowid, prompt)
    VALUES ('delete', old.rowid, substr(COALESCE(json_extract(old.summary, '$.prompt'), ''), 1, 65536));
    INSERT INTO traces_fts(rowid, prompt)
    VALUES (new.rowid, substr(COALESCE(json_extract(new.summary, '$.prompt'), ''), 1, 65536));
END;

INSERT INTO traces_fts(rowid, prompt)
SELECT rowid, substr(COALESCE(json_extract(summary, '$.prompt'), ''), 1, 65536) FROM traces;

-- Projects and their keys. The secret is stored only as a salted hash.
CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Every accepted request body, stored before it is normalized: nothing accepted is lost.
-- status: pending (stored, not yet normalized) | done | failed | unclaimed
CREATE TABLE batches (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   TEXT NOT NULL REFERENCES projects(id),
    signal       TEXT NOT NULL,
    encoding     TEXT NOT NULL,
    body         BLOB NOT NULL,
    body_sha256  TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    status       TEXT NOT NULL,
    agents       TEXT,
    error        TEXT,
    processed_at INTEGER,
    UNIQUE (project_id, signal, body_sha256)
);
CREATE INDEX batches_by_status ON batches(status, id);

-- Which trace each key belongs to (keys that name one trace share its id).
CREATE TABLE trace_keys (
    project_id TEXT NOT NULL,
    key        TEXT NOT NULL,
    trace_id   TEXT NOT NULL,
    PRIMARY KEY (project_id, key)
);
CREATE INDEX trace_keys_by_trace ON trace_keys(project_id, trace_id);

-- What plugins returned, one row per report; re-posting a batch overwrites the same rows.
CREATE TABLE fragments (
    project_id  TEXT NOT NULL,
    trace_key   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    fragment_id TEXT NOT NULL,
    report_id   TEXT NOT NULL,
    batch_id    INTEGER NOT NULL,
    agent       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (project_id, trace_key, kind, fragment_id, report_id)
);
CREATE INDEX fragments_by_batch ON fragments(batch_id);

-- Per-prompt traces, recomputed from their fragments whenever one arrives.
CREATE TABLE traces (
    project_id            TEXT NOT NULL,
    id                    TEXT NOT NULL,
    agent                 TEXT NOT NULL,
    session_id            TEXT,
    user_id               TEXT,
    device_id             TEXT,
    start_ns              INTEGER,
    end_ns                INTEGER,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cost_usd              REAL,
    summary               TEXT NOT NULL,
    observations          TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX traces_by_time ON traces(project_id, start_ns DESC, id);
CREATE INDEX traces_by_session ON traces(project_id, session_id);
CREATE INDEX traces_by_user ON traces(project_id, user_id);

-- Usage metrics: kept per session, never added into per-prompt totals.
CREATE TABLE usage_metrics (
    project_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    report_id  TEXT NOT NULL,
    agent      TEXT NOT NULL,
    user_id    TEXT,
    time_ns    INTEGER NOT NULL,
    value      REAL NOT NULL,
    unit       TEXT NOT NULL,
    attributes TEXT NOT NULL,
    batch_id   INTEGER NOT NULL,
    PRIMARY KEY (project_id, session_id, name, report_id)
);

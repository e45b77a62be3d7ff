-- The PostgreSQL schema: the same tables and indexes as SQLite's (host/migrations/sqlite/),
-- in PostgreSQL types. Text is compared byte by byte (COLLATE "C"), as SQLite does, so lists
-- sort and group the same on both engines.

-- Projects and their keys. The secret is stored only as a salted hash.
CREATE TABLE projects (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL,
    public_key  TEXT COLLATE "C" NOT NULL UNIQUE,
    secret_hash TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Every accepted request body, stored before it is normalized: nothing accepted is lost.
-- status: pending (stored, not yet normalized) | done | failed | unclaimed
CREATE TABLE batches (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
    signal       TEXT COLLATE "C" NOT NULL,
    encoding     TEXT COLLATE "C" NOT NULL,
    body         BYTEA NOT NULL,
    body_sha256  TEXT COLLATE "C" NOT NULL,
    received_at  BIGINT NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    agents       TEXT COLLATE "C",
    error        TEXT COLLATE "C",
    processed_at BIGINT,
    UNIQUE (project_id, signal, body_sha256)
);
CREATE INDEX batches_by_status ON batches(status, id);

-- Which trace each key belongs to (keys that name one trace share its id; a trace's id is
-- its smallest key, itself mapped to the trace).
CREATE TABLE trace_keys (
    project_id TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    trace_id   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, key)
);
CREATE INDEX trace_keys_by_trace ON trace_keys(project_id, trace_id);

-- What plugins returned, one row per report; re-posting a batch overwrites the same rows.
CREATE TABLE fragments (
    project_id  TEXT COLLATE "C" NOT NULL,
    trace_key   TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    fragment_id TEXT COLLATE "C" NOT NULL,
    report_id   TEXT COLLATE "C" NOT NULL,
    batch_id    BIGINT NOT NULL,
    agent       TEXT COLLATE "C" NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, trace_key, kind, fragment_id, report_id)
);
CREATE INDEX fragments_by_batch ON fragments(batch_id);

-- Per-prompt traces, recomputed from their fragments whenever one arrives.
CREATE TABLE traces (
    project_id            TEXT COLLATE "C" NOT NULL,
    id                    TEXT COLLATE "C" NOT NULL,
    agent                 TEXT COLLATE "C" NOT NULL,
    session_id            TEXT COLLATE "C",
    user_id               TEXT COLLATE "C",
    device_id             TEXT COLLATE "C",
    start_ns              BIGINT,
    end_ns                BIGINT,
    input_tokens          BIGINT NOT NULL,
    output_tokens         BIGINT NOT NULL,
    cache_read_tokens     BIGINT NOT NULL,
    cache_creation_tokens BIGINT NOT NULL,
    reasoning_tokens      BIGINT NOT NULL,
    cost_usd              DOUBLE PRECISION,
    summary               TEXT COLLATE "C" NOT NULL,
    observations          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, id)
);
-- NULLS LAST: SQLite sorts NULL below every value, so `DESC` lists traces without a start last.
CREATE INDEX traces_by_time ON traces(project_id, start_ns DESC NULLS LAST, id);
-- Session and user ids are free text up to the text limit (1 MiB), more than a B-tree entry
-- holds (2704 bytes): hash indexes take any length (equality is all the filters need).
CREATE INDEX traces_by_session ON traces USING hash (session_id);
CREATE INDEX traces_by_user ON traces USING hash (user_id);

-- Usage metrics: kept per session, never added into per-prompt totals.
CREATE TABLE usage_metrics (
    project_id TEXT COLLATE "C" NOT NULL,
    session_id TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    report_id  TEXT COLLATE "C" NOT NULL,
    agent      TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C",
    time_ns    BIGINT NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    unit       TEXT COLLATE "C" NOT NULL,
    attributes TEXT COLLATE "C" NOT NULL,
    batch_id   BIGINT NOT NULL
);
-- The primary key of SQLite's table, over digests: a session id may be longer than a B-tree
-- entry holds.
CREATE UNIQUE INDEX usage_metrics_identity
    ON usage_metrics(project_id, md5(session_id), md5(name), report_id);
CREATE INDEX usage_metrics_by_batch ON usage_metrics(batch_id);

-- Resources no plugin claimed, counted per service.name and scope: never dropped silently.
-- Both names come from the sender (up to the 4 MiB string limit): unique over their digests.
CREATE TABLE unclaimed (
    project_id   TEXT COLLATE "C" NOT NULL,
    service_name TEXT COLLATE "C" NOT NULL,
    scope_name   TEXT COLLATE "C" NOT NULL,
    resources    BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL
);
CREATE UNIQUE INDEX unclaimed_identity ON unclaimed(project_id, md5(service_name), md5(scope_name));

-- Take transaction-scoped advisory locks in the order given (the caller sorts them, so two
-- writers never wait for each other in a cycle).
CREATE FUNCTION antenna_lock_all(ids BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    id BIGINT;
BEGIN
    FOREACH id IN ARRAY ids LOOP
        PERFORM pg_advisory_xact_lock(id);
    END LOOP;
END
$$;

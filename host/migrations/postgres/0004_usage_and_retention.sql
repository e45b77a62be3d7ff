-- Usage: where each prompt's work happened, how its cost was made, and its tool counts.
ALTER TABLE traces ADD COLUMN repository TEXT COLLATE "C";
ALTER TABLE traces ADD COLUMN branch TEXT COLLATE "C";
ALTER TABLE traces ADD COLUMN team TEXT COLLATE "C";
ALTER TABLE traces ADD COLUMN cost_source TEXT COLLATE "C";
ALTER TABLE traces ADD COLUMN tool_calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN tool_failures BIGINT NOT NULL DEFAULT 0;
-- No covering index for usage here (SQLite has one): PostgreSQL keeps the wide JSON columns out
-- of line (TOAST), so a scan of traces reads narrow rows, and a B-tree entry holding the text
-- columns could pass its size limit.

-- Tokens and cost of each trace per model ('' for calls that named none): what
-- GET /api/public/usage?group_by=model adds up. Rewritten with its trace, whose filter columns
-- it repeats so that grouping by model never reads the wide trace rows.
CREATE TABLE trace_models (
    project_id            TEXT COLLATE "C" NOT NULL,
    trace_id              TEXT COLLATE "C" NOT NULL,
    model                 TEXT COLLATE "C" NOT NULL,
    agent                 TEXT COLLATE "C" NOT NULL,
    session_id            TEXT COLLATE "C",
    user_id               TEXT COLLATE "C",
    device_id             TEXT COLLATE "C",
    repository            TEXT COLLATE "C",
    branch                TEXT COLLATE "C",
    team                  TEXT COLLATE "C",
    start_ns              BIGINT,
    tool_calls            BIGINT NOT NULL,
    tool_failures         BIGINT NOT NULL,
    input_tokens          BIGINT NOT NULL,
    output_tokens         BIGINT NOT NULL,
    cache_read_tokens     BIGINT NOT NULL,
    cache_creation_tokens BIGINT NOT NULL,
    reasoning_tokens      BIGINT NOT NULL,
    cost_usd              DOUBLE PRECISION,
    PRIMARY KEY (project_id, trace_id, model)
);

-- Outcomes (usage metrics) are grouped by repository and team too, and read by time.
ALTER TABLE usage_metrics ADD COLUMN repository TEXT COLLATE "C";
ALTER TABLE usage_metrics ADD COLUMN team TEXT COLLATE "C";
CREATE INDEX usage_metrics_by_time ON usage_metrics(project_id, time_ns);

-- Retention per project, in days (NULL: kept until deleted): raw batches and traces apart.
ALTER TABLE projects ADD COLUMN batch_retention_days BIGINT;
ALTER TABLE projects ADD COLUMN trace_retention_days BIGINT;

-- Budgets: spend limits per period with a webhook.
CREATE TABLE budgets (
    id          TEXT COLLATE "C" PRIMARY KEY,
    project_id  TEXT COLLATE "C" REFERENCES projects(id),
    scope       TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    period      TEXT COLLATE "C" NOT NULL,
    limit_usd   DOUBLE PRECISION NOT NULL,
    thresholds  TEXT COLLATE "C" NOT NULL,
    webhook_url TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The outbox of budget alerts: one row per (budget, period, threshold) crossed. The primary key
-- makes each alert once across replicas and restarts; a replica claims a row (next_attempt_at
-- moved forward) before it posts, and marks it delivered on a 2xx.
CREATE TABLE budget_alerts (
    budget_id       TEXT COLLATE "C" NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    period_start    TEXT COLLATE "C" NOT NULL,
    threshold       DOUBLE PRECISION NOT NULL,
    payload         TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT COLLATE "C",
    PRIMARY KEY (budget_id, period_start, threshold)
);
CREATE INDEX budget_alerts_due ON budget_alerts(delivered_at, next_attempt_at);

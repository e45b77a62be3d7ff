-- Usage: where each prompt's work happened, how its cost was made, and its tool counts.
ALTER TABLE traces ADD COLUMN repository TEXT;
ALTER TABLE traces ADD COLUMN branch TEXT;
ALTER TABLE traces ADD COLUMN team TEXT;
ALTER TABLE traces ADD COLUMN cost_source TEXT;
ALTER TABLE traces ADD COLUMN tool_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN tool_failures INTEGER NOT NULL DEFAULT 0;
-- Usage reads these columns of many traces: a covering index keeps those reads off the wide
-- rows (summary and observations JSON), and serves the time-ordered lists with filters too.
CREATE INDEX traces_usage ON traces(project_id, start_ns, agent, user_id, device_id, session_id,
    repository, branch, team, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
    reasoning_tokens, cost_usd, tool_calls, tool_failures, id);

-- Tokens and cost of each trace per model ('' for calls that named none): what
-- GET /api/public/usage?group_by=model adds up. Rewritten with its trace, whose filter columns
-- it repeats so that grouping by model never reads the wide trace rows.
CREATE TABLE trace_models (
    project_id            TEXT NOT NULL,
    trace_id              TEXT NOT NULL,
    model                 TEXT NOT NULL,
    agent                 TEXT NOT NULL,
    session_id            TEXT,
    user_id               TEXT,
    device_id             TEXT,
    repository            TEXT,
    branch                TEXT,
    team                  TEXT,
    start_ns              INTEGER,
    tool_calls            INTEGER NOT NULL,
    tool_failures         INTEGER NOT NULL,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    reasoning_tokens      INTEGER NOT NULL,
    cost_usd              REAL,
    PRIMARY KEY (project_id, trace_id, model)
);

-- Outcomes (usage metrics) are grouped by repository and team too, and read by time.
ALTER TABLE usage_metrics ADD COLUMN repository TEXT;
ALTER TABLE usage_metrics ADD COLUMN team TEXT;
CREATE INDEX usage_metrics_by_time ON usage_metrics(project_id, time_ns);

-- Retention per project, in days (NULL: kept until deleted): raw batches and traces apart.
ALTER TABLE projects ADD COLUMN batch_retention_days INTEGER;
ALTER TABLE projects ADD COLUMN trace_retention_days INTEGER;

-- Budgets: spend limits per period with a webhook.
CREATE TABLE budgets (
    id          TEXT PRIMARY KEY,
    project_id  TEXT REFERENCES projects(id),
    scope       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    period      TEXT NOT NULL,
    limit_usd   REAL NOT NULL,
    thresholds  TEXT NOT NULL,
    webhook_url TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The outbox of budget alerts: one row per (budget, period, threshold) crossed. The primary key
-- makes each alert once across replicas and restarts; a replica claims a row (next_attempt_at
-- moved forward) before it posts, and marks it delivered on a 2xx.
CREATE TABLE budget_alerts (
    budget_id       TEXT NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    period_start    TEXT NOT NULL,
    threshold       REAL NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT,
    PRIMARY KEY (budget_id, period_start, threshold)
);
CREATE INDEX budget_alerts_due ON budget_alerts(delivered_at, next_attempt_at);

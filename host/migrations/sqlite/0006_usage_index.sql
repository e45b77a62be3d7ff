-- The usage queries (overview, users, per-day charts) read a period of a project's traces and
-- add up a few columns. In SQLite a trace row holds its summary and observations JSON inline
-- (tens of KB, on overflow pages) before the columns added later (repository, team, tool
-- counts), so every row read walked its overflow chain. This index holds every column those
-- queries read: they are answered from it alone. Measured on 100 848 traces over 30 days
-- (release build): group_by=agent 0.70 -> 0.31 s, user 0.52 -> 0.24 s, model 1.32 -> 0.56 s,
-- day 0.72 -> 0.23 s, day for one agent 0.32 -> 0.05 s; no measurable cost on ingest
-- (Claude Code batches at 16: 297 req/s without, 317 with, noisy shared machine).
-- PostgreSQL keeps those JSON columns out of line (TOAST), so its rows are small already.
CREATE INDEX traces_usage_cover ON traces(
    project_id, start_ns, agent, user_id, session_id, id, device_id, repository, branch, team,
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, cost_usd,
    tool_calls, tool_failures
);

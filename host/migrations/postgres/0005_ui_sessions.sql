-- Web UI sessions: a signed-in browser holds a random token in an HttpOnly cookie; only the
-- token's SHA-256 is stored. In the database so every replica agrees and sign-out revokes
-- everywhere.
CREATE TABLE ui_sessions (
    token_sha256 TEXT COLLATE "C" PRIMARY KEY,
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects(id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions(expires_at);

-- Full-text search over prompt text (`q` on GET /api/public/traces): the first 64 Ki
-- characters of the prompt, split on anything that is not a letter or digit (as SQLite's
-- unicode61 tokenizer does), no stemming ('simple'), GIN-indexed. Set by a trigger rather
-- than a generated column: a prompt that jsonb refuses (a `\u0000` escape) must leave the
-- trace unsearchable, never fail its write.
ALTER TABLE traces ADD COLUMN prompt_tsv tsvector;

CREATE FUNCTION antenna_prompt_tsv(summary TEXT) RETURNS tsvector LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN to_tsvector('simple'::regconfig,
        regexp_replace(left(COALESCE(summary::jsonb ->> 'prompt', ''), 65536), '[^[:alnum:]]+', ' ', 'g'));
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END;
$$;

CREATE FUNCTION antenna_traces_prompt_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.summary IS DISTINCT FROM OLD.summary THEN
        NEW.prompt_tsv := antenna_prompt_tsv(NEW.summary);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER traces_prompt_tsv BEFORE INSERT OR UPDATE OF summary ON traces
    FOR EACH ROW EXECUTE FUNCTION antenna_traces_prompt_tsv();

UPDATE traces SET prompt_tsv = antenna_prompt_tsv(summary);
CREATE INDEX traces_prompt_fts ON traces USING GIN (prompt_tsv);

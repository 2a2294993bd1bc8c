-- pool-store schema, PostgreSQL dialect (keep in step with ../sqlite/0001_store.sql).
-- Times are milliseconds since the Unix epoch; `version` is the compare-and-set token of a
-- job (a later lease/claim layer adds its columns beside it).

CREATE TABLE jobs (
    -- Acceptance order: the order the store took the jobs in.
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Byte order, as the listing cursor compares ids (the database's collation may not be).
    id         TEXT    COLLATE "C" NOT NULL UNIQUE,
    tenant     TEXT,
    state      TEXT    NOT NULL,
    priority   BIGINT  NOT NULL,
    hash       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    version    BIGINT  NOT NULL,
    last_seq   BIGINT  NOT NULL,
    -- The JobRecord as JSON but its spec (see job_specs): rewritten by every update.
    record     TEXT    NOT NULL
);

-- Each job's JobSpec as JSON, written once at insert. A table of its own, so that an update
-- rewrites only the small jobs row, never the spec (up to 100 KB).
CREATE TABLE job_specs (
    seq  BIGINT  PRIMARY KEY REFERENCES jobs (seq) ON DELETE CASCADE,
    spec TEXT    NOT NULL
);

-- Recovery: unfinished jobs in acceptance order (the same predicate as the query's).
CREATE INDEX jobs_unfinished ON jobs (seq)
    WHERE state NOT IN ('completed', 'failed', 'cancelled');
-- Listing, newest first, with the `created_at_ms:id` cursor: everyone, per tenant, per state.
CREATE INDEX jobs_by_time ON jobs (created_at, id);
CREATE INDEX jobs_by_tenant ON jobs (tenant, created_at, id);
CREATE INDEX jobs_by_state ON jobs (state, created_at, id);
-- Purge by age.
CREATE INDEX jobs_finished ON jobs (updated_at)
    WHERE state IN ('completed', 'failed', 'cancelled');

-- Content-addressed bytes (input files, websocket-only images), once per content.
CREATE TABLE blobs (
    key   TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL
);

-- Which job refers to which blob, so a purge keeps exactly the referenced ones.
CREATE TABLE job_blobs (
    job  TEXT COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    blob TEXT NOT NULL,
    PRIMARY KEY (job, blob)
);
CREATE INDEX job_blobs_by_blob ON job_blobs (blob);

-- Failover state of (server, workflow) pairs.
CREATE TABLE blocks (
    server        TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    failures      BIGINT  NOT NULL,
    blocked_count BIGINT  NOT NULL,
    class         TEXT    NOT NULL,
    blocked_until BIGINT,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (server, hash)
);

-- Tenants' API keys: only the SHA-256 of the secret.
CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    revoked    BOOLEAN NOT NULL
);

-- The webhook outbox: one delivery per job.
CREATE TABLE webhook_deliveries (
    job          TEXT    PRIMARY KEY,
    url          TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    attempts     BIGINT  NOT NULL,
    next_at      BIGINT  NOT NULL,
    -- 'pending', 'delivered' (delivered_at set) or 'failed' (failure set).
    state        TEXT    NOT NULL,
    delivered_at BIGINT,
    failure      TEXT,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, created_at, job)
    WHERE state = 'pending';

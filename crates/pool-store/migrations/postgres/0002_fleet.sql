-- Several pool processes on one database (PostgreSQL only: a SQLite store serves one process,
-- so ../sqlite has no counterpart). Expiries are in the database's clock (now()), so processes
-- whose clocks disagree still agree on who holds what. `src/fleet_sql.rs` calls the functions.

-- Each live pool process, present until its heartbeat runs out.
CREATE TABLE fleet_processes (
    process         TEXT        COLLATE "C" PRIMARY KEY,
    heartbeat_until TIMESTAMPTZ NOT NULL
);

-- One row per ComfyUI server ever leased. `owner` holds it until `lease_until` (both NULL:
-- free); `epoch` is the fencing token, bumped each time the server is taken.
CREATE TABLE fleet_leases (
    server      TEXT        COLLATE "C" PRIMARY KEY,
    owner       TEXT        COLLATE "C",
    lease_until TIMESTAMPTZ,
    epoch       BIGINT      NOT NULL DEFAULT 0,
    CHECK ((owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX fleet_leases_by_owner ON fleet_leases (owner) WHERE owner IS NOT NULL;

-- One heartbeat of process `me` over the configured `servers`, as one statement (one
-- transaction, one round trip): renew its presence and leases, give up leases beyond its fair
-- share (the last by name) and those of servers no longer configured, take free or expired
-- ones up to the share (the first by name; rows another heartbeat has locked are skipped,
-- never waited for), and return what it holds. The fair share is servers / live processes,
-- rounded up for the first (servers % live) processes in id order and down for the others:
-- the shares add up to the servers (8 servers, 3 processes: 3/3/2; 4 servers: 2/1/1).
CREATE FUNCTION fleet_lease(me TEXT, servers TEXT[], ttl_ms BIGINT)
RETURNS TABLE (held_server TEXT, held_epoch BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    expires TIMESTAMPTZ := now() + ttl_ms * INTERVAL '1 millisecond';
    live    BIGINT;
    rank    BIGINT;
    fair    BIGINT;
    held    BIGINT;
BEGIN
    INSERT INTO fleet_processes (process, heartbeat_until) VALUES (me, expires)
        ON CONFLICT (process) DO UPDATE SET heartbeat_until = EXCLUDED.heartbeat_until;
    -- Forget processes whose heartbeat ran out (rows another heartbeat is forgetting: skipped).
    DELETE FROM fleet_processes
        WHERE process IN (SELECT p.process FROM fleet_processes p
                          WHERE p.heartbeat_until <= now() FOR UPDATE SKIP LOCKED);
    SELECT count(*), count(*) FILTER (WHERE p.process < me COLLATE "C")
        INTO live, rank
        FROM fleet_processes p WHERE p.heartbeat_until > now();
    fair := cardinality(servers) / live
        + CASE WHEN rank < cardinality(servers) % live THEN 1 ELSE 0 END;

    -- Rows for servers seen for the first time, in name order (so two heartbeats adding the
    -- same servers wait on each other in one order, never in a cycle).
    INSERT INTO fleet_leases (server)
        SELECT t.s FROM unnest(servers) AS t(s)
        WHERE NOT EXISTS (SELECT 1 FROM fleet_leases l WHERE l.server = t.s)
        ORDER BY t.s
        ON CONFLICT DO NOTHING;

    UPDATE fleet_leases l SET owner = NULL, lease_until = NULL
        WHERE l.owner = me AND NOT (l.server = ANY (servers));
    UPDATE fleet_leases l SET lease_until = expires WHERE l.owner = me;
    GET DIAGNOSTICS held = ROW_COUNT;

    IF held > fair THEN
        UPDATE fleet_leases l SET owner = NULL, lease_until = NULL
            WHERE l.server IN (SELECT k.server FROM fleet_leases k WHERE k.owner = me
                               ORDER BY k.server DESC LIMIT held - fair);
    ELSIF held < fair THEN
        WITH free AS (
            SELECT f.server FROM fleet_leases f
            WHERE f.server = ANY (servers) AND (f.owner IS NULL OR f.lease_until <= now())
            ORDER BY f.server
            LIMIT fair - held
            FOR UPDATE SKIP LOCKED
        )
        UPDATE fleet_leases l SET owner = me, lease_until = expires, epoch = l.epoch + 1
            FROM free WHERE l.server = free.server;
    END IF;

    RETURN QUERY SELECT l.server::TEXT, l.epoch FROM fleet_leases l
        WHERE l.owner = me ORDER BY l.server;
END
$$;

-- A clean shutdown of process `me`: its leases are free at once, its presence is gone.
CREATE FUNCTION fleet_leave(me TEXT) RETURNS VOID
LANGUAGE sql AS $$
    UPDATE fleet_leases SET owner = NULL, lease_until = NULL WHERE owner = me;
    DELETE FROM fleet_processes WHERE process = me;
$$;

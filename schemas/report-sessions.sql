-- The session table of `replay report` (sessions.csv; "sessions" in the JSON report) as
-- plain SQL over a store's Parquet tables, for DuckDB, Athena or Trino reading the same
-- bucket. DuckDB dialect; replace STORE with the store root (a directory, or
-- s3://bucket/prefix with DuckDB's httpfs). Events table version 3 (`elapsed_us`).
--
-- Like the report, it takes the metadata from the `start` and `end` rows of the events
-- table (the rows the hash chain signs), not from the unsigned copy in `sessions/`. It
-- does not verify anything: integrity, findings and commands need `replay report`.
-- Columns: session_id, user, source_address, host, start and end (UTC, to the second, as
-- the report prints them; no end for a session that never ended), duration_s (to its
-- end, else to its last event), exit_status, sealed.
WITH events AS (
    SELECT session_id, seq, kind, data, elapsed_us
    FROM read_parquet('STORE/events/*/*.parquet')
),
starts AS (
    SELECT session_id, any_value(decode(data)) AS meta
    FROM events WHERE kind = 'start' GROUP BY session_id
),
ends AS (
    SELECT session_id, any_value(decode(data)) AS meta, max(elapsed_us) AS elapsed_us
    FROM events WHERE kind = 'end' GROUP BY session_id
),
per_session AS (
    SELECT session_id, bool_or(kind = 'sealed') AS sealed, max(elapsed_us) AS last_us
    FROM events GROUP BY session_id
)
SELECT
    s.session_id,
    json_extract_string(s.meta, '$.user') AS "user",
    json_extract_string(s.meta, '$.remote_addr') AS source_address,
    json_extract_string(s.meta, '$.host') AS host,
    strftime(make_timestamp(CAST(CAST(json_extract(s.meta, '$.start_time_ns') AS BIGINT) // 1000 AS BIGINT)),
             '%Y-%m-%dT%H:%M:%SZ') AS "start",
    CASE WHEN e.session_id IS NOT NULL THEN
        strftime(make_timestamp(CAST((CAST(json_extract(s.meta, '$.start_time_ns') AS BIGINT)
                                      + CAST(e.elapsed_us AS BIGINT) * 1000) // 1000 AS BIGINT)),
                 '%Y-%m-%dT%H:%M:%SZ')
    END AS "end",
    round(coalesce(e.elapsed_us, x.last_us) / 1e6, 3) AS duration_s,
    CAST(json_extract(e.meta, '$.exit_status') AS INTEGER) AS exit_status,
    x.sealed
FROM starts s
LEFT JOIN ends e USING (session_id)
JOIN per_session x USING (session_id)
ORDER BY CAST(json_extract(s.meta, '$.start_time_ns') AS BIGINT), s.session_id;

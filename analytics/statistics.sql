-- statistics: totals, per-kind counts, the drowsy rate, and mean / p50 / p95 / p99 of every
-- numeric field. Parameters: $from, $to (device time, epoch ms), $device, $model_name,
-- $model_version, $kind (NULL = all).
--
-- Counts, means, minima and maxima are exact. Percentiles are exact (the lower of the two
-- nearest ranks) up to 32,768 values per field and estimated from a uniform sample of 32,768
-- values beyond that: exact quantiles over millions of rows hold every value in memory.

-- section: totals
SELECT count(*)                                        AS events,
       count(DISTINCT device_id)                       AS devices,
       count(*) FILTER (WHERE severity = 'warning')    AS warnings,
       count(*) FILTER (WHERE severity = 'critical')   AS critical,
       -- among the events that report is_drowsy
       avg(b_is_drowsy::INTEGER)                       AS drowsy_rate,
       min(ts_ms)                                      AS first_ts_ms,
       max(ts_ms)                                      AS last_ts_ms
FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind);

-- section: kinds
SELECT kind, count(*) AS events
FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
GROUP BY kind
ORDER BY events DESC, kind;

-- section: fields
-- One pass computes every numeric column's aggregates side by side (a struct per field), and
-- only that single row is turned into one row per field: unpivoting the events first made the
-- scan six times longer. Fields with no value in the selection are left out.
WITH per_field AS (
    SELECT struct_pack(count := count(COLUMNS('^n_(.*)$')),
                       mean  := avg(COLUMNS('^n_(.*)$')),
                       min   := min(COLUMNS('^n_(.*)$')),
                       max   := max(COLUMNS('^n_(.*)$')),
                       q     := reservoir_quantile(COLUMNS('^n_(.*)$'), [0.5, 0.95, 0.99], 32768)) AS '\1'
    FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
)
SELECT field, s.count AS count, s.mean AS mean, s.min AS min, s.max AS max,
       s.q[1] AS p50, s.q[2] AS p95, s.q[3] AS p99
FROM (UNPIVOT per_field ON COLUMNS(*) INTO NAME field VALUE s)
WHERE s.count > 0
ORDER BY field;

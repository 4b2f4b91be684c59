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
SELECT substr(field, 3)            AS field,
       count(value)                AS count,
       avg(value)                  AS mean,
       min(value)                  AS min,
       max(value)                  AS max,
       reservoir_quantile(value, 0.5, 32768)   AS p50,
       reservoir_quantile(value, 0.95, 32768)  AS p95,
       reservoir_quantile(value, 0.99, 32768)  AS p99
FROM (
    UNPIVOT (SELECT COLUMNS('^n_') FROM telemetry_in($tenant, $from, $to, $device, $model_name, $model_version, $kind))
    ON COLUMNS(*) INTO NAME field VALUE value
)
GROUP BY field
ORDER BY field;

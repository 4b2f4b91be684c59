-- statistics: totals, per-kind counts, the drowsy rate, and mean / p50 / p95 / p99 of every
-- numeric field. Parameters: $from, $to (device time, epoch ms), $device, $model_name,
-- $model_version, $kind (NULL = all).
--
-- Read from the hourly rollups (see schema.sql) plus the rows of partial hours at the range's
-- edges. Counts, means, minima and maxima are exact. A percentile is the value of rank
-- floor(q * (n - 1)) to within 1 %: it is read from the merged histogram bins of the field,
-- each bin's centre kept within the bin's own smallest and largest value.

-- section: totals
-- (Sums of counts are cast back to BIGINT: DuckDB sums BIGINTs as 128-bit integers.)
SELECT coalesce(sum(events), 0)::BIGINT                                     AS events,
       count(DISTINCT device_id)                                            AS devices,
       coalesce(sum(events) FILTER (WHERE severity = 'warning'), 0)::BIGINT  AS warnings,
       coalesce(sum(events) FILTER (WHERE severity = 'critical'), 0)::BIGINT AS critical,
       -- among the events that report is_drowsy
       sum(drowsy_true) / nullif(sum(drowsy_known), 0)                      AS drowsy_rate,
       min(first_ts_ms)                                                     AS first_ts_ms,
       max(last_ts_ms)                                                      AS last_ts_ms
FROM telemetry_hours_in($tenant, $from, $to, $device, $model_name, $model_version, $kind);

-- section: kinds
SELECT kind, sum(events)::BIGINT AS events
FROM telemetry_hours_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
GROUP BY kind
ORDER BY events DESC, kind;

-- section: fields
WITH bins AS (
    SELECT field, bin, sum(count) AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max
    FROM telemetry_bins_in($tenant, $from, $to, $device, $model_name, $model_version, $kind)
    GROUP BY field, bin
), ranked AS (
    -- upto: how many values lie in this bin and the ones below it
    SELECT *, least(greatest(sketch_value(bin), min), max) AS estimate,
           sum(count) OVER (PARTITION BY field ORDER BY bin ROWS UNBOUNDED PRECEDING) AS upto,
           sum(count) OVER (PARTITION BY field) AS n
    FROM bins
)
SELECT field, sum(count)::BIGINT AS count, sum(sum) / sum(count) AS mean, min(min) AS min, max(max) AS max,
       arg_min(estimate, bin) FILTER (WHERE upto > floor(0.50 * (n - 1))) AS p50,
       arg_min(estimate, bin) FILTER (WHERE upto > floor(0.95 * (n - 1))) AS p95,
       arg_min(estimate, bin) FILTER (WHERE upto > floor(0.99 * (n - 1))) AS p99
FROM ranked
GROUP BY field
ORDER BY field;

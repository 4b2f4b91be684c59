-- device-health: per registered device, when it was last heard from (server time), its event
-- rate over the last hour, and whether it is silent (nothing for $silent_after_ms, or never).

-- section: devices
WITH seen AS (
    SELECT device_id,
           max(received_ms)                                          AS last_seen_ms,
           count(*) FILTER (WHERE received_ms >= $now_ms - 3600000)  AS events_last_hour,
           count(*)                                                  AS events
    FROM telemetry
    WHERE tenant_id = $tenant
    GROUP BY device_id
)
SELECT d.device_id, d.name, d.model_name, d.model_version, d.key_state,
       s.last_seen_ms,
       coalesce(s.events, 0)                                    AS events,
       coalesce(s.events_last_hour, 0) / 60.0                   AS events_per_minute,
       s.last_seen_ms IS NULL OR s.last_seen_ms < $now_ms - $silent_after_ms AS silent
FROM devices d LEFT JOIN seen s USING (device_id)
WHERE d.tenant_id = $tenant AND ($device IS NULL OR d.device_id = $device)
ORDER BY silent DESC, s.last_seen_ms NULLS FIRST, d.device_id;

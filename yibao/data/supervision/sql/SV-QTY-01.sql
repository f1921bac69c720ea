-- 超量开药: more units than $max_supply_ratio x max_daily_qty x prescribed days (+ $tolerance_units whole units).
SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code,
       ((f.cnt_milli - $max_supply_ratio * k.max_daily_milli * f.prd_days) * f.pric // 1000)::BIGINT AS amount,
       to_json({cnt: f.cnt_milli / 1000, prd_days: f.prd_days, max_daily_qty: k.max_daily_milli / 1000})::VARCHAR AS evidence
FROM fee_detail f JOIN k_max_daily k USING (med_list_codg) JOIN encounter e USING (mdtrt_id)
WHERE f.prd_days > 0 AND f.cnt_milli > $max_supply_ratio * k.max_daily_milli * f.prd_days + 1000 * $tolerance_units

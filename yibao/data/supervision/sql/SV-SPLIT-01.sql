-- 分解住院: an admission beginning within $max_gap_days days of the same person's previous discharge
-- (at the same institution when $same_institution, with the same principal diagnosis to $dx_prefix_len characters).
WITH ip AS (
  SELECT mdtrt_id, psn_no, fixmedins_code, dr_code, begntime, dise_codg,
         lag(mdtrt_id) OVER w AS prev_id, lag(endtime) OVER w AS prev_end,
         lag(fixmedins_code) OVER w AS prev_inst, lag(dise_codg) OVER w AS prev_dx
  FROM encounter WHERE med_type = '21'
  WINDOW w AS (PARTITION BY psn_no ORDER BY begntime, mdtrt_id)
)
SELECT ip.mdtrt_id AS entity_id, ip.mdtrt_id, ip.psn_no, ip.fixmedins_code, ip.dr_code,
       (SELECT sum(det_item_fee_sumamt) FROM fee_detail f WHERE f.mdtrt_id = ip.mdtrt_id)::BIGINT AS amount,
       to_json({previous: prev_id, gap_hours: (epoch(begntime) - epoch(prev_end)) // 3600})::VARCHAR AS evidence
FROM ip
WHERE prev_id IS NOT NULL
  AND begntime - prev_end <= to_days($max_gap_days::INTEGER)
  AND (NOT $same_institution OR prev_inst = fixmedins_code)
  AND left(dise_codg, $dx_prefix_len) = left(prev_dx, $dx_prefix_len)

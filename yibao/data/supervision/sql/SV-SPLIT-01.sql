-- 分解住院: an admission beginning within $max_gap_days days of the same person's previous discharge
-- (at the same institution when $same_institution, with the same principal diagnosis to $dx_prefix_len characters).
WITH ip AS (
  SELECT mdtrt_id, psn_no, fixmedins_code, dr_code, begntime, dise_codg,
         lag(mdtrt_id) OVER w AS prev_id, lag(endtime) OVER w AS prev_end,
         lag(fixmedins_code) OVER w AS prev_inst, lag(dise_codg) OVER w AS prev_dx
  FROM encounter WHERE med_type = '21'
  WINDOW w AS (PARTITION BY psn_no ORDER BY begntime, mdtrt_id)
), hit AS (
  SELECT * FROM ip
  WHERE prev_id IS NOT NULL
    AND begntime - prev_end <= to_days($max_gap_days::INTEGER)
    AND (NOT $same_institution OR prev_inst = fixmedins_code)
    AND left(dise_codg, $dx_prefix_len) = left(prev_dx, $dx_prefix_len)
), amt AS (SELECT mdtrt_id, sum(det_item_fee_sumamt) AS fen FROM fee_detail WHERE mdtrt_id IN (SELECT mdtrt_id FROM hit) GROUP BY 1)
SELECT h.mdtrt_id AS entity_id, h.mdtrt_id, h.psn_no, h.fixmedins_code, h.dr_code, coalesce(a.fen, 0)::BIGINT AS amount,
       to_json({previous: h.prev_id, gap_hours: (epoch(h.begntime) - epoch(h.prev_end)) // 3600})::VARCHAR AS evidence
FROM hit h LEFT JOIN amt a USING (mdtrt_id)

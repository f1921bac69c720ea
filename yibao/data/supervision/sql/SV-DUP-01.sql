-- 重复收费: the same item, quantity, price and time billed again in one encounter (later copies flagged).
-- Candidate groups come from a hash aggregate (cheaper than a window over every line).
WITH g AS (
  SELECT mdtrt_id, med_list_codg, cnt_milli, pric, fee_ocur_time, min(feedetl_sn) AS first_sn
  FROM fee_detail
  GROUP BY mdtrt_id, med_list_codg, cnt_milli, pric, fee_ocur_time
  HAVING count(*) > 1
)
SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code,
       f.det_item_fee_sumamt::BIGINT AS amount,
       to_json({first_sn: g.first_sn, med_list_codg: f.med_list_codg, fee_ocur_time: f.fee_ocur_time})::VARCHAR AS evidence
FROM fee_detail f
JOIN g USING (mdtrt_id, med_list_codg, cnt_milli, pric, fee_ocur_time)
JOIN encounter e ON e.mdtrt_id = f.mdtrt_id
WHERE f.feedetl_sn > g.first_sn

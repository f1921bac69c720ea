-- 低标入院: a stay of at most $max_days days, without a procedure, for a diagnosis treated in the clinic.
WITH hit AS (
  SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code, e.dise_codg, date_diff('day', e.begntime, e.endtime) AS days
  FROM encounter e
  WHERE e.med_type = '21' AND e.oprn_codg = '' AND date_diff('day', e.begntime, e.endtime) <= $max_days
    AND EXISTS (SELECT 1 FROM k_outpatient_treatable k WHERE starts_with(e.dise_codg, k.dise_prefix))
), amt AS (SELECT mdtrt_id, sum(det_item_fee_sumamt) AS fen FROM fee_detail WHERE mdtrt_id IN (SELECT mdtrt_id FROM hit) GROUP BY 1)
SELECT h.mdtrt_id AS entity_id, h.mdtrt_id, h.psn_no, h.fixmedins_code, h.dr_code, coalesce(a.fen, 0)::BIGINT AS amount,
       to_json({dise_codg: h.dise_codg, days: h.days})::VARCHAR AS evidence
FROM hit h LEFT JOIN amt a USING (mdtrt_id)

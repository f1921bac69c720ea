-- 低标入院: a stay of at most $max_days days, without a procedure, for a diagnosis treated in the clinic.
SELECT e.mdtrt_id AS entity_id, e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code,
       (SELECT sum(det_item_fee_sumamt) FROM fee_detail f WHERE f.mdtrt_id = e.mdtrt_id)::BIGINT AS amount,
       to_json({dise_codg: e.dise_codg, days: date_diff('day', e.begntime, e.endtime)})::VARCHAR AS evidence
FROM encounter e
WHERE e.med_type = '21' AND e.oprn_codg = '' AND date_diff('day', e.begntime, e.endtime) <= $max_days
  AND EXISTS (SELECT 1 FROM k_outpatient_treatable k WHERE starts_with(e.dise_codg, k.dise_prefix))

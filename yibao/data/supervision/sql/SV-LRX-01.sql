-- 长期处方超限: a prescription line written for more than $max_days days.
SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code,
       (f.det_item_fee_sumamt - f.det_item_fee_sumamt * $max_days // f.prd_days)::BIGINT AS amount,
       to_json({prd_days: f.prd_days, max_days: $max_days, med_list_codg: f.med_list_codg})::VARCHAR AS evidence
FROM fee_detail f JOIN encounter e USING (mdtrt_id)
WHERE f.prd_days > $max_days

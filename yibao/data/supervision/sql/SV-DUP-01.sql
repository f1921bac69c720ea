-- 重复收费: the same item, quantity, price and time billed again in one encounter (later copies flagged).
SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount, evidence FROM (
  SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
         coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code,
         f.det_item_fee_sumamt::BIGINT AS amount,
         to_json({first_sn: min(f.feedetl_sn) OVER w, med_list_codg: f.med_list_codg, fee_ocur_time: f.fee_ocur_time})::VARCHAR AS evidence,
         row_number() OVER w AS k
  FROM fee_detail f JOIN encounter e USING (mdtrt_id)
  WINDOW w AS (PARTITION BY f.mdtrt_id, f.med_list_codg, f.cnt_milli, f.pric, f.fee_ocur_time ORDER BY f.feedetl_sn)
) WHERE k > 1

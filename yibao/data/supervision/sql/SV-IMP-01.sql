-- 冒名就医: the principal diagnosis fits only the other sex than the card holder's.
WITH hit AS (
  SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code, e.dise_codg, p.gend
  FROM encounter e JOIN person p USING (psn_no)
  WHERE EXISTS (SELECT 1 FROM k_sex_specific_dx k WHERE starts_with(e.dise_codg, k.dise_prefix) AND k.gend <> p.gend)
), amt AS (SELECT mdtrt_id, sum(det_item_fee_sumamt) AS fen FROM fee_detail WHERE mdtrt_id IN (SELECT mdtrt_id FROM hit) GROUP BY 1)
SELECT h.mdtrt_id AS entity_id, h.mdtrt_id, h.psn_no, h.fixmedins_code, h.dr_code, coalesce(a.fen, 0)::BIGINT AS amount,
       to_json({dise_codg: h.dise_codg, gend: h.gend})::VARCHAR AS evidence
FROM hit h LEFT JOIN amt a USING (mdtrt_id)

-- 冒名就医: the principal diagnosis fits only the other sex than the card holder's.
SELECT e.mdtrt_id AS entity_id, e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code,
       (SELECT sum(det_item_fee_sumamt) FROM fee_detail f WHERE f.mdtrt_id = e.mdtrt_id)::BIGINT AS amount,
       to_json({dise_codg: e.dise_codg, gend: p.gend})::VARCHAR AS evidence
FROM encounter e JOIN person p USING (psn_no)
WHERE EXISTS (SELECT 1 FROM k_sex_specific_dx k WHERE starts_with(e.dise_codg, k.dise_prefix) AND k.gend <> p.gend)

-- 过度检查: a clinic visit with more than $max_exams exam lines or more than $max_heavy CT/MR/PET lines.
SELECT e.mdtrt_id AS entity_id, e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code,
       sum(f.det_item_fee_sumamt)::BIGINT AS amount,
       to_json({exams: count(*), heavy: count(*) FILTER (WHERE x.heavy), exam_fen: sum(f.det_item_fee_sumamt)})::VARCHAR AS evidence
FROM encounter e
JOIN fee_detail f USING (mdtrt_id)
JOIN k_exam_items x ON x.med_list_codg = f.med_list_codg
WHERE list_contains($med_types, e.med_type)
GROUP BY e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code
HAVING count(*) > $max_exams OR count(*) FILTER (WHERE x.heavy) > $max_heavy

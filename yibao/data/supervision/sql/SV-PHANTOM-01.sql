-- 挂床住院: an admission of at least $min_days days that billed only stay charges (bed, nursing, consultation).
SELECT e.mdtrt_id AS entity_id, e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code,
       sum(f.det_item_fee_sumamt)::BIGINT AS amount,
       to_json({days: date_diff('day', e.begntime, e.endtime),
                stay_fen: sum(f.det_item_fee_sumamt),
                other_lines: count(*) FILTER (WHERE h.med_list_codg IS NULL)})::VARCHAR AS evidence
FROM encounter e
JOIN fee_detail f USING (mdtrt_id)
LEFT JOIN k_hotel_items h ON h.med_list_codg = f.med_list_codg
WHERE e.med_type = '21' AND date_diff('day', e.begntime, e.endtime) >= $min_days
GROUP BY e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code, e.begntime, e.endtime
HAVING count(*) FILTER (WHERE h.med_list_codg IS NULL) = 0

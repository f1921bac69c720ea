-- 长期处方未确认: a prescription over $confirm_over_days days on an encounter without the patient's confirmation.
SELECT e.mdtrt_id AS entity_id, e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code,
       0::BIGINT AS amount,
       to_json({prd_days: max(f.prd_days)})::VARCHAR AS evidence
FROM encounter e JOIN fee_detail f USING (mdtrt_id)
WHERE f.prd_days > $confirm_over_days AND NOT e.lt_rx_confirmed AND NOT list_contains($exclude_med_types, e.med_type)
GROUP BY e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code

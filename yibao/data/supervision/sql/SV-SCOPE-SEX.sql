-- 超限定支付范围(性别): the item is limited to one sex and the patient is of the other.
SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount,
       to_json({med_list_codg: med_list_codg, lmt_gend: lmt_gend, gend: gend})::VARCHAR AS evidence
FROM scope_lines WHERE lmt_gend <> '' AND lmt_gend <> gend

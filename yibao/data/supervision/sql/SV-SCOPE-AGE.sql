-- 超限定支付范围(年龄): the patient's completed age on the discharge date is outside the item's range
-- (sex checked first: a line is attributed to the first restriction it breaks).
SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount,
       to_json({med_list_codg: med_list_codg, age: age, lmt_age_min: lmt_age_min, lmt_age_max: lmt_age_max})::VARCHAR AS evidence
FROM scope_lines
WHERE NOT (lmt_gend <> '' AND lmt_gend <> gend)
  AND ((lmt_age_min >= 0 AND age < lmt_age_min) OR (lmt_age_max >= 0 AND age > lmt_age_max))

-- 超限定支付范围(适应症): none of the encounter's diagnoses starts with one of the item's indication prefixes.
SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount,
       to_json({med_list_codg: med_list_codg, lmt_indication: lmt_indication, diagnoses: dx})::VARCHAR AS evidence
FROM scope_lines
WHERE NOT (lmt_gend <> '' AND lmt_gend <> gend)
  AND NOT ((lmt_age_min >= 0 AND age < lmt_age_min) OR (lmt_age_max >= 0 AND age > lmt_age_max))
  AND NOT (lmt_hosp_lv_min > 0 AND hosp_lv < lmt_hosp_lv_min)
  AND lmt_indication <> ''
  AND NOT list_bool_or(list_transform(string_split(lmt_indication, ';'), lambda p: list_bool_or(list_transform(dx, lambda d: starts_with(d, p)))))

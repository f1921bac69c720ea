-- 超限定支付范围(医疗类别): the item is limited to other medical types (e.g. inpatient only).
SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount,
       to_json({med_list_codg: med_list_codg, lmt_med_types: lmt_med_types, med_type: med_type})::VARCHAR AS evidence
FROM scope_lines
WHERE NOT (lmt_gend <> '' AND lmt_gend <> gend)
  AND NOT ((lmt_age_min >= 0 AND age < lmt_age_min) OR (lmt_age_max >= 0 AND age > lmt_age_max))
  AND NOT (lmt_hosp_lv_min > 0 AND hosp_lv < lmt_hosp_lv_min)
  AND NOT (lmt_indication <> '' AND NOT list_bool_or(list_transform(string_split(lmt_indication, ';'), lambda p: list_bool_or(list_transform(dx, lambda d: starts_with(d, p))))))
  AND lmt_med_types <> '' AND NOT list_contains(string_split(lmt_med_types, ';'), med_type)

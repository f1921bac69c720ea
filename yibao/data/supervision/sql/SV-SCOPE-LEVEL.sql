-- 超限定支付范围(医疗机构级别): the item is limited to institutions of a higher level.
SELECT entity_id, mdtrt_id, psn_no, fixmedins_code, dr_code, amount,
       to_json({med_list_codg: med_list_codg, hosp_lv: hosp_lv, lmt_hosp_lv_min: lmt_hosp_lv_min})::VARCHAR AS evidence
FROM scope_lines
WHERE NOT (lmt_gend <> '' AND lmt_gend <> gend)
  AND NOT ((lmt_age_min >= 0 AND age < lmt_age_min) OR (lmt_age_max >= 0 AND age > lmt_age_max))
  AND lmt_hosp_lv_min > 0 AND hosp_lv < lmt_hosp_lv_min

-- shared by the SV-SCOPE-* rules: every line of an item with a payment restriction, with its context
SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code, f.det_item_fee_sumamt::BIGINT AS amount,
       f.med_list_codg, m.lmt_gend, m.lmt_age_min, m.lmt_age_max, m.lmt_hosp_lv_min, m.lmt_indication, m.lmt_med_types,
       p.gend, date_sub('year', p.brdy, CAST(e.endtime AS DATE)) AS age, i.hosp_lv, e.med_type,
       list_filter([e.dise_codg] || string_split(e.other_dise_codg, ';'), lambda d: d <> '') AS dx
FROM fee_detail f
JOIN med_list m USING (med_list_codg)
JOIN encounter e USING (mdtrt_id)
JOIN person p ON p.psn_no = e.psn_no
JOIN institution i ON i.fixmedins_code = e.fixmedins_code
WHERE m.lmt_gend <> '' OR m.lmt_age_min >= 0 OR m.lmt_age_max >= 0 OR m.lmt_hosp_lv_min > 0
   OR m.lmt_indication <> '' OR m.lmt_med_types <> ''

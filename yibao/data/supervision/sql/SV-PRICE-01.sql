-- 超标准收费: a government-priced item charged above its price (plus $tolerance_bp basis points).
SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code,
       (f.det_item_fee_sumamt - (f.cnt_milli * m.pric_uplmt + 500) // 1000)::BIGINT AS amount,
       to_json({pric: f.pric, pric_uplmt: m.pric_uplmt, excess_fen: f.det_item_fee_sumamt - (f.cnt_milli * m.pric_uplmt + 500) // 1000})::VARCHAR AS evidence
FROM fee_detail f JOIN med_list m USING (med_list_codg) JOIN encounter e USING (mdtrt_id)
WHERE list_contains($list_kinds, m.list_kind) AND m.pric_uplmt > 0
  AND f.pric * 10000 > m.pric_uplmt * (10000 + $tolerance_bp)

-- 分解收费: a component billed in the same encounter as the package whose price includes it.
SELECT DISTINCT c.mdtrt_id || '#' || lpad(c.feedetl_sn::VARCHAR, 6, '0') AS entity_id, c.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(c.bilg_dr_code, ''), e.dr_code) AS dr_code,
       c.det_item_fee_sumamt::BIGINT AS amount,
       to_json({package: b.package, component: b.component})::VARCHAR AS evidence
FROM fee_detail c
JOIN k_bundles b ON b.component = c.med_list_codg
JOIN fee_detail p ON p.mdtrt_id = c.mdtrt_id AND p.med_list_codg = b.package
JOIN encounter e ON e.mdtrt_id = c.mdtrt_id

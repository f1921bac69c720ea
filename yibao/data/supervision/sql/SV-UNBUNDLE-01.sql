-- 分解收费: a component billed in the same encounter as the package whose price includes it.
WITH pk AS (SELECT DISTINCT mdtrt_id, med_list_codg AS package FROM fee_detail WHERE med_list_codg IN (SELECT package FROM k_bundles))
SELECT DISTINCT c.mdtrt_id || '#' || lpad(c.feedetl_sn::VARCHAR, 6, '0') AS entity_id, c.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(c.bilg_dr_code, ''), e.dr_code) AS dr_code,
       c.det_item_fee_sumamt::BIGINT AS amount,
       to_json({package: b.package, component: b.component})::VARCHAR AS evidence
FROM fee_detail c
JOIN k_bundles b ON b.component = c.med_list_codg
JOIN pk ON pk.mdtrt_id = c.mdtrt_id AND pk.package = b.package
JOIN encounter e ON e.mdtrt_id = c.mdtrt_id

-- 串换项目: a high-value consumable billed in an encounter with none of the procedures that use it.
WITH codes AS (SELECT mdtrt_id, list(DISTINCT med_list_codg) AS items FROM fee_detail
               WHERE mdtrt_id IN (SELECT f.mdtrt_id FROM fee_detail f JOIN k_item_requires r USING (med_list_codg))
               GROUP BY 1)
SELECT f.mdtrt_id || '#' || lpad(f.feedetl_sn::VARCHAR, 6, '0') AS entity_id, f.mdtrt_id, e.psn_no, e.fixmedins_code,
       coalesce(nullif(f.bilg_dr_code, ''), e.dr_code) AS dr_code,
       f.det_item_fee_sumamt::BIGINT AS amount,
       to_json({med_list_codg: f.med_list_codg, requires: r.requires})::VARCHAR AS evidence
FROM fee_detail f
JOIN k_item_requires r USING (med_list_codg)
JOIN codes c USING (mdtrt_id)
JOIN encounter e USING (mdtrt_id)
WHERE NOT list_has_any(c.items, r.requires)

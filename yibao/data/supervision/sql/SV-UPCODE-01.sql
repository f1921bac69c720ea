-- 高套: a secondary diagnosis that raises the group (major complication) whose treatment evidence is not billed.
-- k_dx_evidence.evidence is a list of groups; every group needs at least one of its items billed in the stay.
WITH dx AS (
  SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code, unnest(string_split(e.other_dise_codg, ';')) AS code
  FROM encounter e WHERE e.med_type = '21' AND e.other_dise_codg <> ''
), hit AS (
  SELECT dx.*, k.evidence FROM dx JOIN k_dx_evidence k ON starts_with(dx.code, k.dise_prefix)
), items AS (
  SELECT mdtrt_id, list(DISTINCT med_list_codg) AS items, sum(det_item_fee_sumamt) AS fen
  FROM fee_detail WHERE mdtrt_id IN (SELECT mdtrt_id FROM hit) GROUP BY 1
)
SELECT h.mdtrt_id AS entity_id, h.mdtrt_id, h.psn_no, h.fixmedins_code, h.dr_code,
       any_value(i.fen)::BIGINT AS amount,
       to_json({code: string_agg(h.code, ';'), evidence_items: flatten(list(flatten(h.evidence)))})::VARCHAR AS evidence
FROM hit h JOIN items i USING (mdtrt_id)
WHERE NOT list_bool_and(list_transform(h.evidence, lambda g: list_has_any(i.items, g)))
GROUP BY h.mdtrt_id, h.psn_no, h.fixmedins_code, h.dr_code

-- 冒名就医: an encounter beginning after the card holder's recorded death (discharge way 5).
WITH death AS (SELECT psn_no, min(endtime) AS t FROM encounter WHERE dscg_way = '5' GROUP BY 1),
hit AS (SELECT e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code, d.t FROM encounter e JOIN death d USING (psn_no) WHERE e.begntime > d.t),
amt AS (SELECT mdtrt_id, sum(det_item_fee_sumamt) AS fen FROM fee_detail WHERE mdtrt_id IN (SELECT mdtrt_id FROM hit) GROUP BY 1)
SELECT h.mdtrt_id AS entity_id, h.mdtrt_id, h.psn_no, h.fixmedins_code, h.dr_code, coalesce(a.fen, 0)::BIGINT AS amount,
       to_json({death_time: h.t})::VARCHAR AS evidence
FROM hit h LEFT JOIN amt a USING (mdtrt_id)

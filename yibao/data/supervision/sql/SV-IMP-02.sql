-- 冒名就医: an encounter beginning after the card holder's recorded death (discharge way 5).
WITH death AS (SELECT psn_no, min(endtime) AS t FROM encounter WHERE dscg_way = '5' GROUP BY 1)
SELECT e.mdtrt_id AS entity_id, e.mdtrt_id, e.psn_no, e.fixmedins_code, e.dr_code,
       (SELECT sum(det_item_fee_sumamt) FROM fee_detail f WHERE f.mdtrt_id = e.mdtrt_id)::BIGINT AS amount,
       to_json({death_time: d.t})::VARCHAR AS evidence
FROM encounter e JOIN death d USING (psn_no)
WHERE e.begntime > d.t

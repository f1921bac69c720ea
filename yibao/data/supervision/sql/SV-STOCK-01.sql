-- 进销存不符: an institution billed more of a drug in the year than it bought plus its opening stock,
-- by more than a share of that (tolerance_bp) and by at least min_excess_units whole units.
-- dr_code: the doctor with the most lines of the pair, ties to the smallest code (mode() breaks ties by row order,
-- which DuckDB's threads do not fix, so two scans of one region could name different doctors).
WITH by_dr AS (
  SELECT e.fixmedins_code, f.med_list_codg, e.dr_code, sum(f.cnt_milli) AS sold_milli, sum(f.det_item_fee_sumamt) AS fen, count(*) AS n
  FROM fee_detail f JOIN encounter e USING (mdtrt_id)
  WHERE f.med_list_codg IN (SELECT DISTINCT med_list_codg FROM purchase)
  GROUP BY 1, 2, 3
), sold AS (
  SELECT fixmedins_code, med_list_codg, sum(sold_milli) AS sold_milli, sum(fen) AS fen, first(dr_code ORDER BY n DESC, dr_code) AS dr_code
  FROM by_dr GROUP BY 1, 2
)
SELECT s.fixmedins_code || '#' || s.med_list_codg AS entity_id, NULL::VARCHAR AS mdtrt_id, NULL::VARCHAR AS psn_no,
       s.fixmedins_code, s.dr_code,
       ((s.sold_milli - p.qty_milli - p.opening_stock_milli) * s.fen // s.sold_milli)::BIGINT AS amount,
       to_json({sold: s.sold_milli / 1000, purchased: p.qty_milli / 1000, opening_stock: p.opening_stock_milli / 1000})::VARCHAR AS evidence
FROM sold s JOIN purchase p USING (fixmedins_code, med_list_codg)
WHERE s.sold_milli * 10000 > (p.qty_milli + p.opening_stock_milli) * (10000 + $tolerance_bp)
  AND s.sold_milli - p.qty_milli - p.opening_stock_milli >= 1000 * $min_excess_units

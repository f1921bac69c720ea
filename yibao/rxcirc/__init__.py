"""Prescription circulation (处方流转): electronic prescriptions filled at designated pharmacies (rx_circ_flag)."""

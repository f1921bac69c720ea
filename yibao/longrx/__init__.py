"""Long prescriptions (长期处方): the disease list, the HIS confirmation, the proxy-pickup log (代取药登记)."""

"""Cross-province filing (异地就医备案): the filing register and whether a claim's care was filed."""

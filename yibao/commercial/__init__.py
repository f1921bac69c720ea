"""Commercial supplementary insurance (商业补充医疗保险, 惠民保-style) as a fourth layer after medical assistance."""

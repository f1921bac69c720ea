"""Maternity insurance (生育保险): the allowance claim side (生育津贴); mechanics in yibao.benefits.maternity."""

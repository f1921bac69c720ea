"""Long-term care insurance as a lifecycle (长期护理保险): assessment, enrolment, monthly claims, settlement."""

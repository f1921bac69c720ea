"""Enrolment and contributions (参保登记、缴费、个人账户划入)."""

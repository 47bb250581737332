"""Differential-privacy steps that are protocol math, shared by the roles (SignDS' r_est adaptation, spec §7.4)."""

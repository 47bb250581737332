"""Differential privacy shared by devices and servers: the analytic Gaussian calibration (spec §7.3), the RDP
accountant of the sampled Gaussian mechanism (beyond MindSpore) and SignDS' r_est adaptation (spec §7.4). numpy and
the standard library only."""

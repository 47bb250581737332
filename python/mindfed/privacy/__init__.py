"""Differential privacy shared by devices and servers: the analytic Gaussian calibration (spec §7.3) and the RDP
accountant of the sampled Gaussian mechanism (beyond MindSpore). numpy and the standard library only."""

"""TLS for mindfed's HTTP servers (device API, scheduler REST) and the device SDK (spec §2.2, §10.1).

A library: it imports no role. `ServerTls` builds the live `ssl.SSLContext` of a server from the PKCS#12
`ssl.server_cert_path` and keeps it current (rotation, expiry warnings); `client_context` is the device side;
`passwords` reads the p12 passwords from the environment (never from the YAML, never logged); `dev_certs` makes
throwaway development certificates (demo, tests, benchmarks). Import the modules themselves: this package
imports nothing, so reading a password from the environment does not load `cryptography`.
"""


"""The one test harness of Tests/python: every test module imports from here, none imports
another test module.

- paths: the repository, the fixture trees, the recorded QEMU replies.
- net: free loopback ports, waiting for a port, a socket or any condition (polled, with a
  deadline: an outcome to wait for, never a guess of the machine's speed).
- process: a server process with its log (start waits for its socket, stop for its exit).
- qmp: the raw QMP client the tests talk through, and raw byte exchanges.
- cssd: the cssd and cssctl binaries, cssd processes (plain, with metrics, refused at start).
- qemu: qemu-system-s390x processes and the comparison of replies with QEMU's recording.
- sysfs: fixture sysfs trees (Tests/fixtures/sysfs) and changes made behind cssd's back.
- broker: a private RabbitMQ node, the notification helpers (credentials, query-notify,
  draining queues, oslo.messaging's listener).
- prometheus: a Prometheus on loopback and its HTTP API; plain HTTP helpers.
- pki: test certificates made with openssl.

Shared pytest fixtures (short_tmp, binary, connect, pki, broker, metrics_cssd, start, ...) are
defined once, in conftest.py, on top of these modules.
"""

"""Test certificates made with openssl: a CA, a server, clients allowed, denied, of another CA,
expired and revoked, in QEMU's tls-creds-x509 layouts (server and client directories)."""

from __future__ import annotations

import os
import shutil
import subprocess

CA_CONFIG = """
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
certificate = {dir}/ca-cert.pem
private_key = {dir}/ca-key.pem
serial = {dir}/serial
crlnumber = {dir}/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = policy_any
unique_subject = no
preserve = yes
email_in_dn = no
[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class CA:
    """A CA in its own directory, issuing with `openssl ca` (so certificates can be revoked)."""

    def __init__(self, root: str, name: str, subject: str):
        self.dir = os.path.join(root, name)
        os.makedirs(os.path.join(self.dir, "newcerts"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("01\n")
        self.config = os.path.join(self.dir, "ca.cnf")
        with open(self.config, "w") as f:
            f.write(CA_CONFIG.format(dir=self.dir))
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "3", "-subj", subject,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        self.cert = os.path.join(self.dir, "ca-cert.pem")

    def issue(self, name: str, subject: str, ext: str = "client_ext", start: str | None = None,
              end: str | None = None) -> tuple[str, str]:
        """A key and certificate (paths); `start`/`end` as YYYYMMDDHHMMSSZ."""
        key = os.path.join(self.dir, f"{name}-key.pem")
        csr = os.path.join(self.dir, f"{name}.csr")
        cert = os.path.join(self.dir, f"{name}-cert.pem")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                 "-out", csr, "-subj", subject, cwd=self.dir)
        args = ["ca", "-batch", "-config", self.config, "-in", csr, "-out", cert, "-extensions", ext, "-notext"]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        _openssl(*args, cwd=self.dir)
        return key, cert

    def revoke(self, cert: str) -> None:
        _openssl("ca", "-batch", "-config", self.config, "-revoke", cert, cwd=self.dir)

    def crl(self, out: str) -> None:
        _openssl("ca", "-batch", "-config", self.config, "-gencrl", "-out", out, cwd=self.dir)


class PKI:
    """Everything the TLS tests need, made once: `server` (a tls-creds-x509 server directory)
    and one client directory per client: mgmt (allowed), intruder (denied by the policy),
    stranger (same DN as mgmt, another CA), expired, revoked."""

    def __init__(self, root: str):
        self.root = root
        ca = CA(root, "ca", "/O=Example/CN=cssd test CA")
        other = CA(root, "other-ca", "/O=Example/CN=another CA")
        self.ca = ca
        self.server = os.path.join(root, "server")
        os.makedirs(self.server)
        key, cert = ca.issue("server", "/O=Example/CN=localhost", ext="server_ext")
        shutil.copy(ca.cert, os.path.join(self.server, "ca-cert.pem"))
        shutil.copy(cert, os.path.join(self.server, "server-cert.pem"))
        shutil.copy(key, os.path.join(self.server, "server-key.pem"))
        self.clients: dict[str, str] = {}
        self._client("mgmt", ca, "/C=GB/O=Example/CN=mgmt")
        self._client("intruder", ca, "/C=GB/O=Example/CN=intruder")
        self._client("stranger", other, "/C=GB/O=Example/CN=mgmt")
        self._client("expired", ca, "/C=GB/O=Example/CN=mgmt-old", start="20200101000000Z", end="20200102000000Z")
        revoked_cert = self._client("revoked", ca, "/C=GB/O=Example/CN=mgmt-revoked")
        ca.revoke(revoked_cert)
        ca.crl(os.path.join(self.server, "ca-crl.pem"))

    def _client(self, name: str, ca: CA, subject: str, **kw) -> str:
        key, cert = ca.issue(name, subject, **kw)
        d = os.path.join(self.root, f"client-{name}")
        os.makedirs(d)
        # The client layout trusts our server's CA whatever CA issued the client's certificate.
        shutil.copy(self.ca.cert, os.path.join(d, "ca-cert.pem"))
        shutil.copy(cert, os.path.join(d, "client-cert.pem"))
        shutil.copy(key, os.path.join(d, "client-key.pem"))
        self.clients[name] = d
        return cert

    def context(self, name: str | None):
        """An ssl.SSLContext for a client (None: no client certificate)."""
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.server, "ca-cert.pem"))
        if name is not None:
            d = self.clients[name]
            ctx.load_cert_chain(os.path.join(d, "client-cert.pem"), os.path.join(d, "client-key.pem"))
        return ctx

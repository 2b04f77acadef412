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
[ intermediate_ext ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
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

    def __init__(self, root: str, name: str, subject: str, parent: "CA | None" = None,
                 key_usage: str | None = None):
        """A root CA, or with `parent` an intermediate CA that `parent` issues (and can revoke);
        `key_usage` replaces the intermediate's (keyCertSign, cRLSign)."""
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
        if parent is None:
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "3", "-subj", subject,
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
            self.cert = os.path.join(self.dir, "ca-cert.pem")
        else:
            ext = "intermediate_ext"
            if key_usage:
                with open(parent.config, "a") as f:
                    f.write(f"[ {name}_ext ]\nbasicConstraints = critical, CA:TRUE\n"
                            f"keyUsage = critical, {key_usage}\n")
                ext = f"{name}_ext"
            key, cert = parent.issue(name, subject, ext=ext)
            shutil.copy(key, os.path.join(self.dir, "ca-key.pem"))
            shutil.copy(cert, os.path.join(self.dir, "ca-cert.pem"))
            self.cert = os.path.join(self.dir, "ca-cert.pem")
        self.parent = parent

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

    def issue_raw(self, name: str, subject) -> tuple[str, str]:
        """A key and client certificate for a subject openssl's -subj cannot write (a
        cryptography x509.Name: control characters, any string type), signed by this CA."""
        import datetime
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID
        with open(os.path.join(self.dir, "ca-key.pem"), "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(self.cert, "rb") as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        key_path = os.path.join(self.dir, f"{name}-key.pem")
        cert_path = os.path.join(self.dir, f"{name}-cert.pem")
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        return key_path, cert_path

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
        return self.add_client(name, key, cert)

    def add_client(self, name: str, key: str, cert: str, chain: tuple[str, ...] = ()) -> str:
        """A client directory for a key and certificate; `chain`: CA certificates the client
        presents after its own (intermediates). Returns the certificate's path."""
        d = os.path.join(self.root, f"client-{name}")
        os.makedirs(d)
        # The client layout trusts our server's CA whatever CA issued the client's certificate.
        shutil.copy(self.ca.cert, os.path.join(d, "ca-cert.pem"))
        with open(os.path.join(d, "client-cert.pem"), "w") as out:
            for path in (cert, *chain):
                with open(path) as f:
                    out.write(f.read())
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

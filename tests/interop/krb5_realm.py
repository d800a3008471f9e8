"""A throwaway Kerberos 5 realm for tests: MIT krb5kdc on 127.0.0.1, everything (config,
database, keytab, credential caches, replay cache) in one temp dir that stop() removes.

    realm = Krb5Realm().start()            # KDC up, service nfs/localhost in realm.keytab
    realm.add_user("daemon"); realm.kinit("daemon")
    server_env = realm.env()               # KRB5_CONFIG, KRB5_KTNAME, KRB5RCACHEDIR
    client_env = realm.env("daemon")       # KRB5_CONFIG, KRB5CCNAME (that user's ccache)
    realm.stop()

Run as a script, it proves the realm works without peernfsd: a Kerberos context from a
user to nfs@localhost initiated and accepted in python (python3-gssapi).
"""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile

from peernfsd_proc import wait_listening

KDB5_UTIL = "/usr/sbin/kdb5_util"
KADMIN_LOCAL = "/usr/sbin/kadmin.local"
KRB5KDC = "/usr/sbin/krb5kdc"


def missing_binaries():
    """The Kerberos programs this module needs that are not installed (Debian: krb5-kdc,
    krb5-admin-server)."""
    return [b for b in (KDB5_UTIL, KADMIN_LOCAL, KRB5KDC) if not os.access(b, os.X_OK)]


def _free_port():
    """A port free for both TCP and UDP on 127.0.0.1 (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for the KDC")


class Krb5Realm:
    """A realm with one KDC. Principals: the service `service` (a host-based name
    service/host, key in self.keytab) and the users add_user makes (random passwords)."""

    def __init__(self, realm="PEERNFS.TEST", service="nfs/localhost"):
        self.realm = realm
        self.service = service
        self.tmp = tempfile.mkdtemp(prefix="peernfs-krb5-")
        self.port = None
        self.kdc = None
        self.keytab = os.path.join(self.tmp, "nfs.keytab")
        self.krb5_conf = os.path.join(self.tmp, "krb5.conf")
        self.kdc_conf = os.path.join(self.tmp, "kdc.conf")
        self.rcache_dir = os.path.join(self.tmp, "rcache")
        self.kdc_log = os.path.join(self.tmp, "kdc.log")
        self.passwords = {}
        self._kdc_out = None

    # -- setup ---------------------------------------------------------------------------

    def _write_configs(self):
        os.mkdir(self.rcache_dir, 0o700)
        t, r, p = self.tmp, self.realm, self.port
        with open(self.krb5_conf, "w") as f:
            f.write(f"""[libdefaults]
    default_realm = {r}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    ignore_acceptor_hostname = false
    default_ccache_name = FILE:{t}/ccache_default
    default_keytab_name = FILE:{self.keytab}
    permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
    forwardable = false

[realms]
    {r} = {{
        kdc = 127.0.0.1:{p}
    }}

[domain_realm]
    localhost = {r}
    .localhost = {r}

[logging]
    default = FILE:{t}/krb5lib.log
""")
        with open(self.kdc_conf, "w") as f:
            f.write(f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{p}
    kdc_tcp_listen = 127.0.0.1:{p}

[realms]
    {r} = {{
        database_name = {t}/principal
        key_stash_file = {t}/stash
        acl_file = {t}/kadm5.acl
        admin_keytab = FILE:{t}/kadm5.keytab
        kdc_listen = 127.0.0.1:{p}
        kdc_tcp_listen = 127.0.0.1:{p}
        max_life = 2h
        max_renewable_life = 0
        master_key_type = aes256-cts-hmac-sha1-96
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{self.kdc_log}
    admin_server = FILE:{t}/kadmin.log
    default = FILE:{t}/krb5lib.log
""")
        with open(os.path.join(t, "kadm5.acl"), "w") as f:
            f.write("")

    def _admin_env(self):
        env = dict(os.environ)
        env.update(KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf)
        return env

    def _run(self, argv, stdin=None, timeout=30):
        r = subprocess.run(argv, input=stdin, env=self._admin_env(), capture_output=True,
                           timeout=timeout)
        out = (r.stdout + r.stderr).decode(errors="replace")
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])}... exited {r.returncode}: {out}")
        return out

    def kadmin(self, query):
        """One kadmin.local query; an error message in its output is an exception (it
        exits 0 after a failed query)."""
        out = self._run([KADMIN_LOCAL, "-r", self.realm, "-q", query])
        for line in out.splitlines():
            low = line.lower()
            if ("error" in low or "not found" in low or "failed" in low
                    or "usage" in low) and "no policy specified" not in low:
                raise RuntimeError(f"kadmin.local -q {query.split()[0]}: {out}")
        return out

    def start(self, timeout=15):
        missing = missing_binaries()
        if missing:
            raise RuntimeError("Kerberos binaries missing: " + " ".join(missing))
        try:
            self.port = _free_port()
            self._write_configs()
            # -P: the master password on the command line, so nothing is asked on a tty
            self._run([KDB5_UTIL, "-r", self.realm, "create", "-s", "-P",
                       secrets.token_hex(16)], timeout=60)
            self.kadmin(f"addprinc -randkey {self.service}")
            self.kadmin(f"ktadd -k {self.keytab} {self.service}")
            self._start_kdc(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_kdc(self, timeout):
        self._kdc_out = open(os.path.join(self.tmp, "krb5kdc.out"), "wb")
        self.kdc = subprocess.Popen([KRB5KDC, "-n", "-r", self.realm], env=self._admin_env(),
                                    stdout=self._kdc_out, stderr=self._kdc_out,
                                    stdin=subprocess.DEVNULL)
        wait_listening(self.kdc, self.port, timeout, "krb5kdc", self.kdc_output)

    def kdc_output(self):
        text = ""
        for name in ("krb5kdc.out", "kdc.log"):
            try:
                with open(os.path.join(self.tmp, name), "rb") as f:
                    text += f.read().decode(errors="replace")[-2000:]
            except OSError:
                pass
        return text

    # -- principals and credentials ------------------------------------------------------

    def principal(self, user):
        return f"{user}@{self.realm}"

    def add_user(self, user):
        """A user principal with a random password (kept in self.passwords)."""
        pw = secrets.token_urlsafe(18)
        # password on stdin: not in a process list; kadmin.local asks twice
        out = self._run([KADMIN_LOCAL, "-r", self.realm, "-q", f"addprinc {user}"],
                        stdin=f"{pw}\n{pw}\n".encode())
        if "created" not in out:
            raise RuntimeError(f"addprinc {user}: {out}")
        self.passwords[user] = pw
        return pw

    def ccache(self, user):
        return os.path.join(self.tmp, f"ccache_{user}")

    def kinit(self, user):
        """A TGT for user (by its password) into its own file ccache; returns the
        ccache path. Uses this process's KRB5_CONFIG, so activate() first."""
        import gssapi
        import gssapi.raw as graw
        self.activate()
        name = gssapi.Name(self.principal(user), gssapi.NameType.kerberos_principal)
        res = graw.acquire_cred_with_password(name, self.passwords[user].encode(),
                                              usage="initiate")
        graw.store_cred_into({b"ccache": ("FILE:" + self.ccache(user)).encode()}, res.creds,
                             usage="initiate", overwrite=True)
        return self.ccache(user)

    def user_creds(self, user):
        """The initiator credential of user from its ccache (after kinit)."""
        import gssapi
        self.activate()
        return gssapi.Credentials(usage="initiate",
                                  store={"ccache": "FILE:" + self.ccache(user)})

    def env(self, user=None):
        """Environment variables for the server (user None) or for a client as user."""
        if user is None:
            return {"KRB5_CONFIG": self.krb5_conf, "KRB5_KTNAME": "FILE:" + self.keytab,
                    "KRB5RCACHEDIR": self.rcache_dir}
        return {"KRB5_CONFIG": self.krb5_conf, "KRB5CCNAME": "FILE:" + self.ccache(user),
                "KRB5RCACHEDIR": self.rcache_dir}

    def activate(self):
        """Point this process's Kerberos library at the realm (KRB5_CONFIG and the replay
        cache dir; the library reads them when it makes a context, i.e. on every GSS call)."""
        os.environ["KRB5_CONFIG"] = self.krb5_conf
        os.environ["KRB5RCACHEDIR"] = self.rcache_dir

    # -- teardown ------------------------------------------------------------------------

    def stop(self):
        if self.kdc is not None and self.kdc.poll() is None:
            self.kdc.terminate()
            try:
                self.kdc.wait(5)
            except subprocess.TimeoutExpired:
                self.kdc.kill()
                self.kdc.wait(5)
        self.kdc = None
        if self._kdc_out:
            self._kdc_out.close()
            self._kdc_out = None
        for var, val in (("KRB5_CONFIG", self.krb5_conf), ("KRB5RCACHEDIR", self.rcache_dir)):
            if os.environ.get(var) == val:
                del os.environ[var]
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def check_realm(realm, user):
    """A context from user (kinit done) to nfs@localhost, accepted with the realm's
    keytab in this process, then a MIC and a wrap each way: the realm works before any
    RPC is involved. Raises AssertionError (or a GSSError) when it does not."""
    import gssapi
    target = gssapi.Name("nfs@localhost", gssapi.NameType.hostbased_service)
    init = gssapi.SecurityContext(name=target, creds=realm.user_creds(user),
                                  usage="initiate", mech=gssapi.MechType.kerberos,
                                  flags=gssapi.RequirementFlag.mutual_authentication
                                  | gssapi.RequirementFlag.integrity
                                  | gssapi.RequirementFlag.confidentiality)
    acc_creds = gssapi.Credentials(usage="accept", store={"keytab": realm.keytab})
    acc = gssapi.SecurityContext(creds=acc_creds, usage="accept")
    token = init.step()
    for _ in range(5):
        reply = acc.step(token)
        if reply:
            init.step(reply)
        if init.complete and acc.complete:
            break
    assert init.complete and acc.complete, "context not established"
    assert str(acc.initiator_name) == realm.principal(user), str(acc.initiator_name)
    assert str(init.target_name).startswith(realm.service + "@"), str(init.target_name)
    mic = init.get_signature(b"header")
    acc.verify_signature(b"header", mic)
    wrapped = acc.wrap(b"secret", True)
    assert wrapped.encrypted and init.unwrap(wrapped.message).message == b"secret"
    try:
        acc.verify_signature(b"headeR", mic)
        raise AssertionError("a MIC over other bytes verified")
    except gssapi.exceptions.BadMICError:
        pass


def self_test():
    with Krb5Realm() as realm:
        realm.add_user("alice")
        realm.kinit("alice")
        check_realm(realm, "alice")
        tmp = realm.tmp
        kdc = realm.kdc
    assert kdc.poll() is not None, "stop() left the KDC running"
    assert not os.path.exists(tmp), "stop() left the temp dir"
    print("krb5 realm self-test: OK")


if __name__ == "__main__":
    if missing_binaries():
        print("SKIP: missing " + " ".join(missing_binaries()))
        sys.exit(0)
    self_test()

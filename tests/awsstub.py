#!/usr/bin/env python3
"""awsstub: loopback stand-ins for the AWS credential endpoints, written from
AWS's published formats, plus a recording S3 front for a real S3 server.

    awsstub.py --meta 127.0.0.1:PORT [--s3 127.0.0.1:PORT2 --target 127.0.0.1:PORT3]
               [--link-local] [--pidfile FILE] [--log FILE]

--link-local also serves the meta endpoints on 169.254.170.2:80 (the ECS
container endpoint of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) and
[fd00:ec2::254]:80 (IMDS over IPv6), and nowhere else: only inside a
network namespace the test made, with those addresses on its loopback
(tests/integration/netns_creds_test.sh).

The meta port answers, by path:

  PUT /latest/api/token               IMDSv2 session token; needs
                                      X-aws-ec2-metadata-token-ttl-seconds
                                      (1..21600, else 400); a request carrying
                                      X-Forwarded-For is refused (403), as the
                                      real service does for proxied requests
  GET /latest/meta-data/iam/security-credentials/[ROLE]
                                      the role name, then its credentials JSON
                                      (Code, LastUpdated, Type, AccessKeyId,
                                      SecretAccessKey, Token, Expiration); 401
                                      without a valid token unless imdsv1=1
  POST / Action=AssumeRoleWithWebIdentity
                                      STS query API: RoleArn, RoleSessionName,
                                      WebIdentityToken (must equal web_token);
                                      also as an HTTP proxy (POST http://HOST/,
                                      counted as sts_proxied);
                                      AssumeRoleWithWebIdentityResponse XML, or
                                      ErrorResponse (InvalidIdentityToken)
  GET /v2/credentials/...             container endpoint: needs Authorization
                                      equal to container_token (else 401;
                                      container_token=none: none wanted, and
                                      one sent is refused, like ECS's agent);
                                      JSON with AccessKeyId, SecretAccessKey,
                                      Token, Expiration
  GET /_ctl/set?KEY=VALUE&...         change a setting; answers "OK"
  GET /_ctl/stats                     counters as JSON

Settings (start values): ttl=3600 (seconds the credentials live),
expired=0 (hand out credentials that expired an hour ago), malformed=0
(answer credentials requests with junk), stall=0 (seconds to wait before
answering credentials requests), imdsv1=0, token_status=200 (another status: the token PUT
answers it, like an IMDSv1-only service), sts_echo=0 (1: STS's InvalidIdentityToken
message quotes the token it was sent), no_expiration=0 (1: credentials answers
without Expiration), token_stall=0 (seconds the token PUT waits: an answer the
hop limit drops), revoked=0 (N: the next N credentials handed out carry a token
the S3 front already holds expired, though their Expiration is ttl away: a
session revoked, or this host's clock behind), web_token=wi-token,
container_token=ctok-secret, access_key=test:tester, secret=testing.

Every session token handed out is "wstok.SOURCE.N.EXPIRY" (EXPIRY in epoch
seconds).  The S3 front (--s3) forwards every request to --target byte for
byte and records per request the method, path, query, the integrity and
encryption headers, whether Content-MD5 matches the body; it answers 400
ExpiredToken itself when x-amz-security-token is a stub token that has
expired (a real S3 checks that; Swift ignores the header).  Its settings:
s3_deny_sse=1 answers a request carrying x-amz-server-side-encryption with
403 AccessDenied mentioning KMS; s3_bad_etag=N rewrites the ETag of the
next N successful PUT answers.  GET /_ctl/requests on the meta port lists the recorded
requests as JSON.  127.0.0.0/8 only; Python 3 standard library only.
"""

import argparse
import base64
import hashlib
import http.client
import ipaddress
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.RLock()
SET = {
    "ttl": "3600", "expired": "0", "malformed": "0", "stall": "0", "imdsv1": "0",
    "web_token": "wi-token", "container_token": "ctok-secret",
    "access_key": "test:tester", "secret": "testing",
    "s3_deny_sse": "0", "s3_bad_etag": "0", "token_status": "200", "sts_echo": "0",
    "no_expiration": "0", "token_stall": "0", "revoked": "0",
}
STATS = {"imds_token": 0, "imds_role": 0, "imds_creds": 0, "imds_401": 0, "sts": 0, "sts_denied": 0, "sts_proxied": 0,
         "container": 0, "container_401": 0, "s3": 0, "s3_expired": 0, "tokens_seen": 0}
TOKENS_SEEN = set()
IMDS_TOKENS = {}
REQUESTS = []
SEQ = [0]
LOG = [None]
ROLE = "walship-role"


def log(msg):
    if LOG[0]:
        with LOCK, open(LOG[0], "a") as f:
            f.write("%.3f %s\n" % (time.time(), msg))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_creds(source):
    with LOCK:
        SEQ[0] += 1
        n = SEQ[0]
        ttl = int(SET["ttl"])
        exp = int(time.time()) - 3600 if SET["expired"] == "1" else int(time.time()) + ttl
        tok_exp = exp
        if int(SET["revoked"]) > 0:     # S3 already holds it expired (revoked, or a clock behind)
            SET["revoked"] = str(int(SET["revoked"]) - 1)
            tok_exp = int(time.time()) - 1
        return {"AccessKeyId": SET["access_key"], "SecretAccessKey": SET["secret"],
                "Token": "wstok.%s.%d.%d" % (source, n, tok_exp), "Expiration": iso(exp)}


def setting(k):
    with LOCK:
        return SET[k]


def bump(k):
    with LOCK:
        STATS[k] += 1


class Meta(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        log("meta " + (fmt % args))

    def reply(self, status, body, ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def stall(self):
        s = float(setting("stall"))
        if s > 0:
            time.sleep(s)

    def creds_json(self, source, imds=False):
        if setting("malformed") == "1":
            return "{\"AccessKeyId\": \"broken"
        c = new_creds(source)
        if setting("no_expiration") == "1":
            del c["Expiration"]
        if imds:
            c = dict(Code="Success", LastUpdated=iso(time.time()), Type="AWS-HMAC", **c)
        return json.dumps(c)

    def do_PUT(self):
        self.body()
        if self.path != "/latest/api/token":
            return self.reply(404, "not found")
        if "X-Forwarded-For" in self.headers:
            return self.reply(403, "forbidden")
        if float(setting("token_stall")) > 0:  # the hop limit dropping the answer in a container
            time.sleep(float(setting("token_stall")))
        if setting("token_status") != "200":
            return self.reply(int(setting("token_status")), "no IMDSv2 here")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "bad ttl")
        tok = "imds-" + secrets.token_hex(16)
        with LOCK:
            IMDS_TOKENS[tok] = time.time() + int(ttl)
        bump("imds_token")
        self.send_response(200)
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", ttl)
        self.send_header("Content-Length", str(len(tok)))
        self.end_headers()
        self.wfile.write(tok.encode())

    def imds(self):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with LOCK:
            good = tok is not None and IMDS_TOKENS.get(tok, 0) > time.time()
        if not good and (tok is not None or setting("imdsv1") != "1"):
            bump("imds_401")
            return self.reply(401, "unauthorized")
        base = "/latest/meta-data/iam/security-credentials/"
        role = self.path[len(base):]
        if role == "":
            bump("imds_role")
            return self.reply(200, ROLE)
        if role != ROLE:
            return self.reply(404, "not found")
        self.stall()
        bump("imds_creds")
        return self.reply(200, self.creds_json("imds", True), "application/json")

    def container(self):
        want = setting("container_token")
        if self.headers.get("Authorization") != (None if want == "none" else want):
            bump("container_401")
            return self.reply(401, json.dumps({"message": "bad token"}), "application/json")
        self.stall()
        bump("container")
        return self.reply(200, self.creds_json("container"), "application/json")

    def sts(self, params):
        self.stall()
        if params.get("Action") != "AssumeRoleWithWebIdentity" or "RoleArn" not in params:
            return self.reply(400, "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
                              "<Message>bad request</Message></Error></ErrorResponse>", "text/xml")
        if params.get("WebIdentityToken") != setting("web_token"):
            bump("sts_denied")
            msg = "Couldn't retrieve verification key from your identity provider"
            if setting("sts_echo") == "1":  # an STS-compatible server quoting the token back
                msg = "the token %s is not valid" % params.get("WebIdentityToken", "").replace("<", "&lt;")
            return self.reply(400, "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                              "<Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>%s</Message></Error>"
                              "<RequestId>stub-1</RequestId></ErrorResponse>" % msg, "text/xml")
        bump("sts")
        if setting("malformed") == "1":
            return self.reply(200, "<AssumeRoleWithWebIdentityResponse><broken", "text/xml")
        c = new_creds("sts")
        exp = "" if setting("no_expiration") == "1" else "<Expiration>%s</Expiration>" % c["Expiration"]
        xml = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
               "<AssumeRoleWithWebIdentityResult>"
               "<SubjectFromWebIdentityToken>system:serviceaccount:db:walship</SubjectFromWebIdentityToken>"
               "<Audience>sts.amazonaws.com</Audience>"
               "<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROA:%s</AssumedRoleId></AssumedRoleUser>"
               "<Credentials><SessionToken>%s</SessionToken><SecretAccessKey>%s</SecretAccessKey>"
               "%s<AccessKeyId>%s</AccessKeyId></Credentials>"
               "<Provider>oidc.example</Provider></AssumeRoleWithWebIdentityResult>"
               "<ResponseMetadata><RequestId>stub-2</RequestId></ResponseMetadata>"
               "</AssumeRoleWithWebIdentityResponse>") % (
            params["RoleArn"], params.get("RoleSessionName", ""), params.get("RoleSessionName", ""),
            c["Token"], c["SecretAccessKey"], exp, c["AccessKeyId"])
        return self.reply(200, xml, "text/xml")

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/_ctl/set":
            with LOCK:
                for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
                    if k not in SET:
                        break
                    SET[k] = v
                else:
                    k = None
            return self.reply(400 if k else 200, "ERR unknown %s\n" % k if k else "OK\n")
        if u.path == "/_ctl/stats":
            with LOCK:
                out = json.dumps(STATS)
            return self.reply(200, out, "application/json")
        if u.path == "/_ctl/requests":
            with LOCK:
                out = json.dumps(REQUESTS)
            return self.reply(200, out, "application/json")
        if u.path.startswith("/latest/meta-data/iam/security-credentials/"):
            return self.imds()
        if u.path.startswith("/v2/credentials/"):
            return self.container()
        if "Action=" in u.query:
            return self.sts(dict(urllib.parse.parse_qsl(u.query)))
        return self.reply(404, "not found")

    def do_POST(self):
        params = dict(urllib.parse.parse_qsl(self.body().decode()))
        if self.path.startswith("http://"):     # absolute form: asked as an HTTP proxy
            bump("sts_proxied")
        return self.sts(params)


class Front(BaseHTTPRequestHandler):
    """Forwards to the S3 server, recording headers and checking tokens."""
    protocol_version = "HTTP/1.1"
    target = None

    def log_message(self, fmt, *args):
        log("s3 " + (fmt % args))

    def error(self, status, code, msg):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>%s</Message>"
                "<RequestId>stub-s3</RequestId></Error>" % (code, msg)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        arrived = time.time()   # S3 judges the token when the request arrives, not after its body
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        h = {k.lower(): v for k, v in self.headers.items()}
        u = urllib.parse.urlsplit(self.path)
        rec = {"method": self.command, "path": u.path, "query": u.query, "len": len(body)}
        for k in ("content-md5", "x-amz-checksum-sha256", "x-amz-checksum-algorithm",
                  "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id",
                  "x-amz-server-side-encryption-bucket-key-enabled", "x-amz-security-token"):
            if k in h:
                rec[k] = h[k]
        tok = h.get("x-amz-security-token")
        if tok:
            rec["token_left"] = round(int(tok.rsplit(".", 1)[1]) - arrived, 2) if tok.startswith("wstok.") else None
        if "content-md5" in h:
            rec["md5_ok"] = h["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
        if "x-amz-checksum-sha256" in h:
            rec["sha256_ok"] = h["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        tok = h.get("x-amz-security-token")
        with LOCK:
            REQUESTS.append(rec)
            STATS["s3"] += 1
            if tok and tok not in TOKENS_SEEN:
                TOKENS_SEEN.add(tok)
                STATS["tokens_seen"] += 1
        if tok and tok.startswith("wstok."):
            exp = int(tok.rsplit(".", 1)[1])
            if exp <= arrived:
                bump("s3_expired")
                return self.error(400, "ExpiredToken", "The provided token has expired.")
        if "x-amz-server-side-encryption" in h and setting("s3_deny_sse") == "1":
            return self.error(403, "AccessDenied", "User is not authorized to perform: kms:GenerateDataKey")
        if "x-amz-server-side-encryption" in h:
            # Swift's s3api refuses SSE (501); the stub has recorded the headers
            # and answers like a server that cannot do it
            return self.error(501, "NotImplemented", "Server-side encryption is not supported.")
        conn = http.client.HTTPConnection(self.target[0], self.target[1], timeout=300)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                conn.putheader(k, v)
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        bad = False
        if self.command == "PUT" and r.status == 200:
            with LOCK:
                if int(SET["s3_bad_etag"]) > 0:
                    SET["s3_bad_etag"] = str(int(SET["s3_bad_etag"]) - 1)
                    bad = True
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            if bad and k.lower() == "etag":
                v = "\"0123456789abcdef0123456789abcdef\""
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def addr(s):
    host, port = s.rsplit(":", 1)
    if not ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"):
        raise SystemExit("awsstub: %s is not a loopback address" % host)
    return host, int(port)


LINK_LOCAL = (("169.254.170.2", 80), ("fd00:ec2::254", 80))


class Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", required=True)
    ap.add_argument("--s3")
    ap.add_argument("--target")
    ap.add_argument("--pidfile")
    ap.add_argument("--log")
    ap.add_argument("--link-local", action="store_true")
    a = ap.parse_args()
    LOG[0] = a.log
    servers = [ThreadingHTTPServer(addr(a.meta), Meta)]
    if a.link_local:
        servers.append(ThreadingHTTPServer(LINK_LOCAL[0], Meta))
        servers.append(Server6(LINK_LOCAL[1], Meta))
    if a.s3:
        Front.target = addr(a.target)
        servers.append(ThreadingHTTPServer(addr(a.s3), Front))
    for s in servers:
        s.daemon_threads = True
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    try:
        servers[0].serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
